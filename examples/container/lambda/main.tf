# A Lambda function from a container image, by digest. Lambda runs only
# images in an ECR repository of its own account and region, built for its
# runtime interface (an AWS base image, or a Lambda runtime client in the
# image). Roll back by pinning a version:
#
#   tofu apply -var api_version=1.0.0   # the function's image_uri goes back to 1.0.0's digest
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

variable "store" {
  description = "The store the release is published in (file://…, s3://…)."
  type        = string
}

variable "api_version" {
  description = "The version of the api release to deploy: null for the latest."
  type        = string
  default     = null
}

variable "lambda_role_arn" {
  description = "The function's execution role."
  type        = string
}

provider "immutable" {
  store = var.store
}

provider "aws" {}

data "immutable_release" "api" {
  name    = "api"
  version = var.api_version
}

resource "aws_lambda_function" "api" {
  function_name = "api"
  role          = var.lambda_role_arn
  package_type  = "Image"
  image_uri     = data.immutable_release.api.images["api"]
}
