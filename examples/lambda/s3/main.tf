# A Lambda function deployed straight from the S3 store, rolled back by
# pinning a release version: no copy, no upload. The artifact stores a
# reproducible zip beside its files, and the function reads that object.
# Its key is the zip's sha256, so it changes exactly when the code does.
#
#   tofu apply                           # publishes api 1.0.0 and deploys it
#   (edit src/index.js) && tofu apply    # publishes 1.0.1 and deploys it
#   tofu apply -var api_version=1.0.0    # rolls back: nothing is rebuilt
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "api_version" {
  description = "The version of the api release to deploy: null for the latest, an older one to roll back to it."
  type        = string
  default     = null
}

variable "lambda_role_arn" {
  description = "The function's execution role."
  type        = string
}

variable "store" {
  description = "The shared store, s3://BUCKET/PREFIX."
  type        = string
  default     = "s3://acme-releases/api"
}

variable "region" {
  description = "The region of the function and of the store's bucket: Lambda reads code only from a bucket in its own region."
  type        = string
  default     = "eu-west-1"
}

variable "s3_endpoint" {
  description = "An S3-compatible endpoint for the store; null for AWS S3."
  type        = string
  default     = null
}

provider "immutable" {
  store = var.store

  s3 {
    region         = var.region
    endpoint       = var.s3_endpoint
    use_path_style = var.s3_endpoint != null
  }
}

provider "aws" {
  region = var.region
}

# Build: the function's code and its zip, published as a new version when
# it changes.
resource "immutable_artifact" "api" {
  source  = "${path.module}/src"
  archive = "zip"
}

resource "immutable_release" "api" {
  name      = "api"
  artifacts = { lambda = immutable_artifact.api.digest }
}

# Deploy: the chosen version, and where its stored zip is.
data "immutable_release" "api" {
  name    = "api"
  version = var.api_version

  depends_on = [immutable_release.api]
}

data "immutable_artifact" "api" {
  digest = data.immutable_release.api.artifacts["lambda"]
}

resource "aws_lambda_function" "api" {
  function_name = "api"
  role          = var.lambda_role_arn
  runtime       = "nodejs20.x"
  handler       = "index.handler"

  s3_bucket = data.immutable_artifact.api.s3_bucket
  s3_key    = data.immutable_artifact.api.archive_locations["zip"]
}
