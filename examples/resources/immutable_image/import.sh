# Import an image by its reference, repository@digest. Nothing is pushed or
# read at import; the next plan takes the layers and config from the
# configuration, and its apply pushes whatever the registry lacks.
terraform import immutable_image.site ghcr.io/acme/site@sha256:4b4f4d1e3b1f3c0c8d6b5a2f6e9d7c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d
