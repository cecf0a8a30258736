# Fails the plan unless this artifact is in the store and every byte of it
# still matches its digest.
data "immutable_artifact" "site" {
  digest = "sha256:750ae8f3150cd6709219da05f613ddfad2b1d15c28b9a3eaaeca612a1c6237c7"
}

output "site_files" {
  value = data.immutable_artifact.site.file_count
}
