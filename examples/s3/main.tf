# Share artifacts and releases across machines, CI runners and people with
# an S3 bucket (or any S3-compatible store). Credentials come from the
# standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
# SSO, web identity or an instance role; never from this file or the state.
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "store" {
  description = "The shared store, s3://BUCKET/PREFIX."
  type        = string
  default     = "s3://acme-releases/web"
}

variable "s3_region" {
  description = "The bucket's region."
  type        = string
  default     = "eu-west-1"
}

variable "s3_endpoint" {
  description = "An S3-compatible endpoint (MinIO, Ceph RGW, R2, ...); null for AWS S3."
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
  source = "${path.module}/site"
}

resource "immutable_release" "web" {
  name      = "web"
  artifacts = { site = immutable_artifact.site.digest }
}

output "release" {
  value = immutable_release.web.id
}
