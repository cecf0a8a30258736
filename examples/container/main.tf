# From source to a running service by digest: a static Go web server built
# by immutable_build, put with a static site in an image from scratch,
# pushed by digest, released, and deployed from the release. Rolling back
# is pinning a version: one in-place change of the image reference,
# nothing built, nothing pushed.
#
#   tofu apply -var registry=127.0.0.1:5000          # builds, pushes, publishes web 1.0.0, deploys it
#   (edit site/index.html) && tofu apply -var ...     # pushes one layer, publishes 1.0.1, deploys it
#   tofu apply -var ... -var web_version=1.0.0        # rolls back: nothing built or pushed
#
# The first plan cannot know the image's digest: the server is built at
# apply. From then on the build is a cache hit (in this store, or in a
# store shared with CI), and every plan shows the digest the registry will
# serve.
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "registry" {
  description = "The registry the image is pushed to, as host[:port]: ghcr.io/acme, 123456789012.dkr.ecr.eu-west-1.amazonaws.com, 127.0.0.1:5000."
  type        = string
}

variable "web_version" {
  description = "The version of the web release to deploy: null for the latest, an older one to roll back to it."
  type        = string
  default     = null
}

# Credentials come from `docker login` (Docker's config.json and its
# credential helpers), or a registry block; loopback registries are
# reached over plain HTTP.
provider "immutable" {}

# Build: the server, compiled into one static binary.
resource "immutable_artifact" "server" {
  source = "${path.module}/server/main.go"
}

resource "immutable_build" "server" {
  command = ["go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", "server", "main.go"]
  tools   = ["go"]
  inputs  = { "main.go" = immutable_artifact.server.digest }
  environment = {
    CGO_ENABLED = "0"
    GOOS        = "linux"
    GOARCH      = "amd64"
    GOTOOLCHAIN = "local"
  }
  # Go's build cache is keyed by content: kept between runs, outside the key.
  caches  = { GOCACHE = "go-build" }
  output  = "server"
  timeout = "10m"
}

resource "immutable_artifact" "site" {
  source = "${path.module}/site"
}

# The image: two layers, each a deterministic tar of a stored tree, so its
# digest is a function of the server's and the site's digests.
resource "immutable_image" "web" {
  repository = "${var.registry}/web"
  platform   = "linux/amd64"
  layers = [
    {
      digest    = immutable_build.server.digest
      path      = "/server"
      file_mode = "0755" # a single file is 0644 unless told: it is a program
    },
    {
      digest = immutable_artifact.site.digest
      path   = "/srv/www"
    },
  ]
  config = {
    entrypoint    = ["/server"]
    env           = { PORT = "8080" }
    working_dir   = "/srv/www"
    user          = "65534:65534"
    exposed_ports = ["8080/tcp"]
    labels        = { "org.opencontainers.image.title" = "web" }
  }
}

# Publish: the image by digest, beside the trees it is made of. A new
# version is published whenever one of them changes.
resource "immutable_release" "web" {
  name      = "web"
  artifacts = { server = immutable_build.server.digest, site = immutable_artifact.site.digest }
  images    = { web = immutable_image.web.ref }
}

# Deploy: the chosen version's image, by digest.
data "immutable_release" "web" {
  name    = "web"
  version = var.web_version

  # Read after this run's publish when there is one; otherwise during plan,
  # so the plan shows the image a rollback deploys.
  depends_on = [immutable_release.web]
}

# Stands in for what runs the image: a kubernetes_deployment
# (kubernetes/main.tf), an aws_ecs_task_definition (ecs/main.tf) or an
# aws_lambda_function (lambda/main.tf). It only sees a digest reference.
resource "terraform_data" "deployment" {
  input = data.immutable_release.web.images["web"]
}

output "image" {
  value = immutable_image.web.ref
}

output "published_version" {
  value = immutable_release.web.version
}

output "deployed_version" {
  value = data.immutable_release.web.resolved_version
}

output "deployed_image" {
  value = terraform_data.deployment.output
}
