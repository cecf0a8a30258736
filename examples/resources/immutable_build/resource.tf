resource "immutable_artifact" "src" {
  source = "${path.module}/src"
}

# Runs only when src (or the command, or sh's or cat's binary) changes; a
# step recorded already in the store (by CI, or a teammate) is a cache hit:
# its digest is known at plan and nothing runs.
resource "immutable_build" "bundle" {
  command = ["sh", "-c", "mkdir out && cat src/*.txt > out/all.txt"]
  tools   = ["sh", "mkdir", "cat"]
  inputs  = { src = immutable_artifact.src.digest }
  output  = "out"
  archive = "zip"
}

output "bundle" {
  value = {
    digest    = immutable_build.bundle.digest
    cache_hit = immutable_build.bundle.cache_hit
    zip       = immutable_build.bundle.archive_path
  }
}
