# The latest stable version.
data "immutable_release" "latest" {
  name = "web"
}

# Pin a version to roll back: its artifacts are already stored.
data "immutable_release" "pinned" {
  name    = "web"
  version = "1.4.2"
}

# The highest 1.x from 1.4 on.
data "immutable_release" "compatible" {
  name    = "web"
  version = "~> 1.4"
}

output "site_digest" {
  value = data.immutable_release.pinned.artifacts["site"]
}
