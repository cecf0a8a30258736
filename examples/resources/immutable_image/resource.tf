# The base, resolved from its tag at plan: the image is built on the digest
# the tag points at, and a moved tag shows in the plan as a new base digest
# (to pin it instead, write base = "…@sha256:…" and bump it by hand).
data "immutable_image" "nginx" {
  name     = "docker.io/nginxinc/nginx-unprivileged:1.27-alpine"
  platform = "linux/amd64"
}

resource "immutable_artifact" "site" {
  source = "${path.module}/site"
}

# A site on nginx. The digest is known at plan: a changed file is a new
# digest and a replacement in the plan; apply pushes only the new layer
# (the base's layers are mounted or already there), then the manifest by
# digest, then moves the tag.
resource "immutable_image" "site" {
  repository = "ghcr.io/acme/site"
  base       = data.immutable_image.nginx.ref
  layers = [{
    digest = immutable_artifact.site.digest
    path   = "/usr/share/nginx/html"
  }]
  config = {
    labels = { "org.opencontainers.image.source" = "https://github.com/acme/site" }
  }
  tags = ["latest"]
}

# What a deployment pulls: ghcr.io/acme/site@sha256:…
output "site_image" {
  value = immutable_image.site.ref
}
