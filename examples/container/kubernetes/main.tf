# Deploy the web release's image to Kubernetes, by digest. Another
# configuration (../main.tf, or CI) publishes the release to the same
# store; this one only reads it. Roll back by pinning a version:
#
#   tofu apply                            # deploys the latest version of web
#   tofu apply -var web_version=1.0.0     # rolls back: one in-place change of the image
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
  }
}

variable "store" {
  description = "The store the release is published in (file://…, s3://…)."
  type        = string
}

variable "web_version" {
  description = "The version of the web release to deploy: null for the latest."
  type        = string
  default     = null
}

provider "immutable" {
  store = var.store
}

provider "kubernetes" {}

data "immutable_release" "web" {
  name    = "web"
  version = var.web_version
}

resource "kubernetes_deployment" "web" {
  metadata {
    name   = "web"
    labels = { app = "web" }
  }

  spec {
    replicas = 2

    selector {
      match_labels = { app = "web" }
    }

    template {
      metadata {
        labels = { app = "web" }
      }

      spec {
        container {
          name = "web"
          # registry/web@sha256:…: the nodes pull exactly the image released.
          image = data.immutable_release.web.images["web"]

          port {
            container_port = 8080
          }
        }
      }
    }
  }
}
