# Every file of a directory with its digest: "<kind> sha256:<hex>".
locals {
  site_files = provider::immutable::file_digests("${path.module}/site", "**/*.map")
}

output "changed_detector" {
  value = { for path, entry in local.site_files : path => split(" ", entry)[1] }
}
