# The release workspace promotes: staging takes any published version,
# prod only one that staging had. Each change of `version` is a move, a
# write-once entry in the channel's history; rolling back is a move back.
resource "immutable_channel" "staging" {
  release = "web"
  channel = "staging"
  version = "1.5.0"
}

resource "immutable_channel" "prod" {
  release  = "web"
  channel  = "prod"
  version  = "1.4.2"
  requires = ["staging"]
  reason   = "CHG-1234: weekly promotion"

  # Registry-native consumers (Flux, Argo CD, `docker pull`) follow a tag:
  # after each move, the tag `prod` of the api image's repository points
  # at the image this version names. Deploy by digest to pin.
  image_tags = { api = "prod" }
}
