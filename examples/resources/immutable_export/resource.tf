# The version to deploy. Pin an older one to roll back: its artifacts are
# already stored, nothing is rebuilt.
data "immutable_release" "web" {
  name    = "web"
  version = "1.4.2"
}

# The site as a directory for a web server to serve. A new version is
# swapped in at once: readers see the old site or the new one, never a mix.
resource "immutable_export" "site" {
  digest = data.immutable_release.web.artifacts["site"]
  path   = "${path.module}/public"
}

# The API's Lambda bundle as a zip, byte-identical to the artifact's
# archive; its hash is known at plan.
resource "immutable_export" "api" {
  digest = data.immutable_release.web.artifacts["api"]
  path   = "${path.module}/build/api.zip"
  format = "zip"
}

output "api_source_code_hash" {
  value = immutable_export.api.base64sha256
}
