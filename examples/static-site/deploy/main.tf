# Deploy: look up a published version of the "site" release and write its
# site artifact into the directory a web server serves. Nothing is built
# here: the bytes come from the store, verified against the digest.
#
#   tofu -chdir=deploy init
#   tofu -chdir=deploy apply                              # the latest version
#   tofu -chdir=deploy apply -var deploy_version=1.0.0    # roll back: pin it
#
# Changing the version updates the export in place: the new tree is written
# beside www/ and swapped in at once, so the server never serves half a site.
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "deploy_version" {
  description = "The version of the site release to serve: null for the latest, an exact version (\"1.0.0\") or a constraint (\"~> 1.0\") to pin it."
  type        = string
  default     = null
}

variable "www_dir" {
  description = "The directory the web server serves. Relative to this directory."
  type        = string
  default     = "../www"
}

variable "store" {
  description = "The store the releases are published to, as in publish/."
  type        = string
  default     = "file://../.immutable"
}

variable "s3_region" {
  description = "The bucket's region, for an s3:// store; null for AWS_REGION."
  type        = string
  default     = null
}

variable "s3_endpoint" {
  description = "An S3-compatible endpoint (MinIO, Ceph RGW, R2, ...), for an s3:// store; null for AWS S3."
  type        = string
  default     = null
}

provider "immutable" {
  store = var.store

  s3 {
    region         = var.s3_region
    endpoint       = var.s3_endpoint
    use_path_style = var.s3_endpoint != null
  }
}

# Read at plan: the plan shows which version, and which digest, is deployed.
data "immutable_release" "site" {
  name    = "site"
  version = var.deploy_version
}

resource "immutable_export" "www" {
  digest = data.immutable_release.site.artifacts["site"]
  path   = var.www_dir
}

output "deployed_version" {
  value = data.immutable_release.site.resolved_version
}

output "deployed_digest" {
  value = immutable_export.www.digest
}

output "www" {
  description = "The absolute path of the served directory."
  value       = immutable_export.www.id
}
