# Import an artifact that is already in the store by its digest. With the
# same content in the configuration, the next plan updates it in place.
terraform import immutable_artifact.site sha256:750ae8f3150cd6709219da05f613ddfad2b1d15c28b9a3eaaeca612a1c6237c7
