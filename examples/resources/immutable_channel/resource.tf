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
}
