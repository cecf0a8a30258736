# Rollback by pinning a version: publish, change, publish again, then deploy
# an older version without rebuilding anything.
#
#   tofu apply                              # publishes app 1.0.0 and deploys it
#   echo v2 > app/version.txt && tofu apply # publishes 1.0.1 and deploys it
#   tofu apply -var app_version=1.0.0       # rolls back: nothing is rebuilt
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

provider "immutable" {}

variable "app_version" {
  description = "Version of the app release to deploy: null for the latest, an older version to roll back to it."
  type        = string
  default     = null
}

resource "immutable_artifact" "app" {
  source = "${path.module}/app"
}

resource "immutable_release" "app" {
  name      = "app"
  artifacts = { app = immutable_artifact.app.digest }
  metadata  = { environment = "production" }
}

data "immutable_release" "deployed" {
  name    = "app"
  version = var.app_version

  # Read after this run's publish when there is one; otherwise during plan,
  # so the plan shows what a rollback deploys.
  depends_on = [immutable_release.app]
}

# Stands in for whatever deploys the artifacts: a Lambda function, an S3
# sync, a Helm release. It only sees digests of content already stored.
resource "terraform_data" "deployment" {
  input = data.immutable_release.deployed.artifacts
}

output "published_version" {
  value = immutable_release.app.version
}

output "deployed_version" {
  value = data.immutable_release.deployed.resolved_version
}
