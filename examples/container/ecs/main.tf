# Run the web release's image on ECS (Fargate), by digest. Another
# configuration publishes the release, with the image pushed to ECR; this
# one only reads it. Roll back by pinning a version:
#
#   tofu apply -var web_version=1.0.0   # a new task definition revision with 1.0.0's image
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

variable "web_version" {
  description = "The version of the web release to deploy: null for the latest."
  type        = string
  default     = null
}

variable "execution_role_arn" {
  description = "The task execution role: it needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository."
  type        = string
}

provider "immutable" {
  store = var.store
}

provider "aws" {}

data "immutable_release" "web" {
  name    = "web"
  version = var.web_version
}

resource "aws_ecs_task_definition" "web" {
  family                   = "web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = var.execution_role_arn

  container_definitions = jsonencode([{
    name      = "web"
    image     = data.immutable_release.web.images["web"]
    essential = true
    portMappings = [{
      containerPort = 8080
      protocol      = "tcp"
    }]
  }])
}
