# web 1.4.2 breaks logins: `~> 1.4` and the latest now skip it (deploys
# that follow them move to the highest other version at their next plan),
# an exact pin to it still resolves, with a warning. Destroy this to
# un-yank it; both are entries in the version's history, never deleted.
resource "immutable_yank" "web_1_4_2" {
  name    = "web"
  version = "1.4.2"
  reason  = "breaks logins for SSO users (INC-4711)"
}
