resource "immutable_artifact" "site" {
  source = "${path.module}/site"
}

resource "immutable_artifact" "config" {
  content = jsonencode({ api_url = "https://api.example.com" })
}

# Publishes 1.0.0, then 1.0.1, 1.0.2, ... each time the artifacts or the
# metadata change. Content equal to a published version adopts that version.
resource "immutable_release" "web" {
  name = "web"
  artifacts = {
    site   = immutable_artifact.site.digest
    config = immutable_artifact.config.digest
  }
  metadata = {
    environment = "production"
  }
  version_bump = "patch"
}

output "web_release" {
  value = immutable_release.web.id # "web@1.0.0"
}
