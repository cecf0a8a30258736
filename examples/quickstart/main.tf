# Quickstart: turn a directory into a content digest during plan, and store
# it once in the local content-addressed store (./.immutable).
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

provider "immutable" {}

resource "immutable_artifact" "site" {
  source   = "${path.module}/site"
  excludes = ["**/.DS_Store"]
}

output "digest" {
  value = immutable_artifact.site.digest
}

output "files" {
  value = immutable_artifact.site.files
}
