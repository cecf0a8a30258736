# Publish: turn ../site into an artifact (hashed at plan, stored once) and
# publish it as a release. Each change to the site publishes the next
# version (1.0.0, 1.0.1, ...); a published version is never overwritten.
#
#   tofu -chdir=publish init
#   tofu -chdir=publish apply
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "store" {
  description = "The store releases are published to; deploy/ must read the same one. Relative to this directory, or s3://BUCKET/PREFIX."
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

resource "immutable_artifact" "site" {
  source   = "${path.module}/../site"
  excludes = ["**/.DS_Store"]
}

resource "immutable_release" "site" {
  name      = "site"
  artifacts = { site = immutable_artifact.site.digest }
}

output "version" {
  description = "The version this configuration published (or adopted)."
  value       = immutable_release.site.version
}

output "site_digest" {
  value = immutable_artifact.site.digest
}
