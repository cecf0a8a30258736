# The digest immutable_artifact would compute, with no resource and no
# store: for a trigger, a tag, or a cache key.
output "site_digest" {
  value = provider::immutable::digest("${path.module}/site", "**/*.map", ".git")
}

# A file's digest is filesha256() with the "sha256:" prefix.
output "bundle_digest" {
  value = provider::immutable::digest("${path.module}/site/index.html")
}
