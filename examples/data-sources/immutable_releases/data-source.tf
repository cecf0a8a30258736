data "immutable_releases" "web" {
  name       = "web"
  constraint = ">= 1.0, < 2.0"
}

output "versions" {
  value = [for v in data.immutable_releases.web.versions : "${v.version} ${v.published_at}"]
}

output "latest" {
  value = data.immutable_releases.web.latest
}
