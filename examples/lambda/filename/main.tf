# A Lambda function deployed from a zip file, rolled back by pinning a
# release version. The zip is exported from the store: byte for byte the
# reproducible archive of the version deployed, its hash known at plan.
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

provider "immutable" {}

variable "api_version" {
  description = "The version of the api release to deploy: null for the latest, an older one to roll back to it."
  type        = string
  default     = null
}

variable "lambda_role_arn" {
  description = "The function's execution role."
  type        = string
}

# Build: the function's code, published as a new version when it changes.
resource "immutable_artifact" "api" {
  source = "${path.module}/src"
}

resource "immutable_release" "api" {
  name      = "api"
  artifacts = { lambda = immutable_artifact.api.digest }
}

# Deploy: the chosen version, written out as a zip.
data "immutable_release" "api" {
  name    = "api"
  version = var.api_version

  depends_on = [immutable_release.api]
}

resource "immutable_export" "api" {
  digest = data.immutable_release.api.artifacts["lambda"]
  path   = "${path.module}/build/api.zip"
  format = "zip"
}

resource "aws_lambda_function" "api" {
  function_name = "api"
  role          = var.lambda_role_arn
  runtime       = "nodejs20.x"
  handler       = "index.handler"

  filename         = immutable_export.api.path
  source_code_hash = immutable_export.api.base64sha256
}
