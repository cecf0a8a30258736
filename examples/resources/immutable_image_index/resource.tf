locals {
  platforms = ["linux/amd64", "linux/arm64"]
}

resource "immutable_artifact" "src" {
  source = "${path.module}/src"
}

# One static binary per platform, each built once per source change.
resource "immutable_build" "api" {
  for_each = toset(local.platforms)

  command = ["go", "build", "-trimpath", "-buildvcs=false", "-o", "api", "./src/main.go"]
  tools   = ["go"]
  inputs  = { src = immutable_artifact.src.digest }
  environment = {
    CGO_ENABLED = "0"
    GOOS        = split("/", each.key)[0]
    GOARCH      = split("/", each.key)[1]
    GOTOOLCHAIN = "local"
  }
  caches = { GOCACHE = "go-build" }
  output = "api"
}

resource "immutable_image" "api" {
  for_each = toset(local.platforms)

  repository = "ghcr.io/acme/api"
  platform   = each.key
  layers = [{
    digest    = immutable_build.api[each.key].digest
    path      = "/api"
    file_mode = "0755"
  }]
  config = {
    entrypoint    = ["/api"]
    exposed_ports = ["8080/tcp"]
  }
}

# The multi-platform image: `docker pull` and Kubernetes nodes take the
# manifest of their own platform. Its digest is known at plan with its
# images'.
resource "immutable_image_index" "api" {
  repository = "ghcr.io/acme/api"
  images     = [for p in local.platforms : immutable_image.api[p].ref]
  tags       = ["latest"]
}

output "api_image" {
  value = immutable_image_index.api.ref
}
