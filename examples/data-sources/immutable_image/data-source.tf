# A tag resolved at plan to the digest the registry serves now.
data "immutable_image" "distroless" {
  name     = "gcr.io/distroless/static-debian12:nonroot"
  platform = "linux/amd64"
}

# Build on it: the base is pinned by digest in the plan and the state, and
# a moved tag shows in the next plan as a new base digest (the image is
# replaced). To decide when to move, write the digest in the configuration
# instead, and compare it with this output to bump it.
output "distroless_now" {
  value = data.immutable_image.distroless.ref
}

# A multi-platform image without platform: ref is the index's, and
# platforms names each platform's manifest.
data "immutable_image" "alpine" {
  name = "docker.io/library/alpine:3.21"
}

output "alpine_arm64" {
  value = data.immutable_image.alpine.platforms["linux/arm64"]
}
