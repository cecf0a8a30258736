# The deploy workspace follows prod: whatever the release workspace
# promotes (or rolls back to) is deployed at the next apply.
data "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
}

resource "immutable_export" "site" {
  digest = data.immutable_channel.prod.artifacts["site"]
  path   = "${path.module}/www"
}

output "prod" {
  value = {
    version = data.immutable_channel.prod.version
    since   = data.immutable_channel.prod.moved_at
    history = [for m in data.immutable_channel.prod.history : "${coalesce(m.from, "-")} -> ${m.to} (${m.reason})"]
  }
}
