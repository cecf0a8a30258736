# A build pipeline whose steps run only when their inputs change, and are
# shared through the store: the graph
#
#   config/a.conf, config/b.conf ─> proc_a ─┬─> image_a (a tar of its output)
#                                           └─> image_b (go build, zipped: a Lambda bundle)
#   config/c.conf ───────────────> proc_b ───> image_c (a tar of its output)
#
#   tofu apply                        # runs every step once, records each in the store
#   (edit config/a.conf) && tofu apply   # runs proc_a, image_a and image_b; not proc_b or image_c
#   (undo the edit) && tofu apply     # runs nothing: every step's key is recorded
#
# Another working directory (a teammate, a fresh CI runner) on the same store
# plans every output known and runs nothing. Each step runs in a fresh
# directory holding only its inputs, with only the declared variables and
# tools, so its key — a digest of those — says everything it depends on.
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "store" {
  description = "The store the steps are recorded in: share it (s3://…) to share the builds."
  type        = string
  default     = null
}

provider "immutable" {
  store = var.store
}

resource "immutable_artifact" "config_a" {
  source = "${path.module}/config/a.conf"
}

resource "immutable_artifact" "config_b" {
  source = "${path.module}/config/b.conf"
}

resource "immutable_artifact" "config_c" {
  source = "${path.module}/config/c.conf"
}

resource "immutable_artifact" "function" {
  source = "${path.module}/function"
}

locals {
  # Reproducible tars: sorted names, fixed times and owners.
  tar = "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner"
}

resource "immutable_build" "proc_a" {
  command = ["sh", "-c", "mkdir out && cat a.conf b.conf > out/settings.conf"]
  tools   = ["sh", "mkdir", "cat"]
  inputs = {
    "a.conf" = immutable_artifact.config_a.digest
    "b.conf" = immutable_artifact.config_b.digest
  }
  output = "out"
}

resource "immutable_build" "image_a" {
  command = ["sh", "-c", "${local.tar} -cf image-a.tar -C settings ."]
  tools   = ["sh", "tar"]
  inputs  = { settings = immutable_build.proc_a.digest }
  output  = "image-a.tar"
}

# A Lambda-style bundle: a static Go binary named bootstrap, zipped
# reproducibly. On a cache hit its archive_base64sha256 is known at plan.
resource "immutable_build" "image_b" {
  command = ["sh", "-c", <<-EOT
    set -e
    cp -R function src && chmod -R u+w src
    cp settings/settings.conf src/
    mkdir bundle
    cd src && go build -trimpath -buildvcs=false -o ../bundle/bootstrap .
  EOT
  ]
  tools  = ["sh", "cp", "chmod", "mkdir", "go"]
  inputs = { function = immutable_artifact.function.digest, settings = immutable_build.proc_a.digest }
  environment = {
    CGO_ENABLED = "0"
    GOOS        = "linux"
    GOARCH      = "arm64"
    GOTOOLCHAIN = "local"
  }
  # Go's build cache is keyed by content: kept between runs, outside the key.
  caches  = { GOCACHE = "go-build" }
  output  = "bundle"
  archive = "zip"
  timeout = "10m"
}

resource "immutable_build" "proc_b" {
  command = ["sh", "-c", "tr a-z A-Z < c.conf > c.upper"]
  tools   = ["sh", "tr"]
  inputs  = { "c.conf" = immutable_artifact.config_c.digest }
  output  = "c.upper"
}

resource "immutable_build" "image_c" {
  command = ["sh", "-c", "${local.tar} -cf image-c.tar c.upper"]
  tools   = ["sh", "tar"]
  inputs  = { "c.upper" = immutable_build.proc_b.digest }
  output  = "image-c.tar"
}

# The images, released together: roll back by pinning a version.
resource "immutable_release" "images" {
  name = "images"
  artifacts = {
    image_a = immutable_build.image_a.digest
    image_b = immutable_build.image_b.digest
    image_c = immutable_build.image_c.digest
  }
}

# What aws_lambda_function takes: filename and source_code_hash.
output "lambda_zip" {
  value = immutable_build.image_b.archive_path
}

output "lambda_source_code_hash" {
  value = immutable_build.image_b.archive_base64sha256
}

output "release" {
  value = immutable_release.images.id
}
