# What the latest stable version changed since the one deployed before it.
data "immutable_release_diff" "since_last" {
  name = "web"
  from = "1.4.1"
}

# 1.4.2 broke production: which files changed since 1.4.1?
data "immutable_release_diff" "incident" {
  name             = "web"
  from             = "1.4.1"
  to               = "1.4.2"
  max_file_changes = 20
}

output "artifacts_changed" {
  value = keys(data.immutable_release_diff.incident.artifacts_changed)
}

# "- css/old.css", "~ index.html", "+ js/app.js", at most 20 of them.
output "site_files" {
  value = data.immutable_release_diff.incident.artifacts_changed["site"].file_changes
}

locals {
  site = data.immutable_release_diff.incident.artifacts_changed["site"]
}

# All of them, however many file_changes lists.
output "site_files_total" {
  value = local.site.files_added + local.site.files_removed + local.site.files_changed
}

output "metadata_changed" {
  value = data.immutable_release_diff.incident.metadata_changed
}
