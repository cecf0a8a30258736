package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// diffConfig: a release of a directory artifact (site) and two content
// artifacts, with the given artifacts map and metadata, plus extra blocks.
func (e *env) diffConfig(config, artifacts, metadata string, extra ...string) string {
	out := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}

resource "immutable_artifact" "config" {
  content = %q
}

resource "immutable_artifact" "other" {
  content = "other"
}

resource "immutable_release" "web" {
  name      = "web"
  artifacts = %s
  metadata  = %s
}
`, e.dir, config, artifacts, metadata)
	for _, x := range extra {
		out += x + "\n"
	}
	return out
}

// TestAccReleaseDiff: publish 1.0.0, then 1.0.1 with a directory artifact
// changed (a file changed, one added, one removed), a file artifact
// changed, an artifact added and one removed, and metadata added, removed
// and changed. The release resource's plan of 1.0.1 names the changed
// artifacts (and apply agrees: the final plan of the replacement, with no
// prior state, computes the same). data.immutable_release_diff reports
// every change, forwards to the latest and backwards between exact
// versions, bounded by max_file_changes with complete counts; unknown
// releases and versions are attribute errors.
func TestAccReleaseDiff(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		v1 := e.diffConfig("a=1",
			`{ site = immutable_artifact.site.digest, config = immutable_artifact.config.digest, legacy = immutable_artifact.other.digest }`,
			`{ environment = "production", owner = "web-team", ticket = "OPS-1" }`)
		v2 := func(extra ...string) string {
			return e.diffConfig("a=2",
				`{ site = immutable_artifact.site.digest, config = immutable_artifact.config.digest, api = immutable_artifact.other.digest }`,
				`{ environment = "staging", owner = "web-team", git_sha = "abc123" }`, extra...)
		}
		const diffs = `
data "immutable_release_diff" "latest" {
  name = "web"
  from = "1.0.0"
}

data "immutable_release_diff" "back" {
  name             = "web"
  from             = "1.0.1"
  to               = "1.0.0"
  max_file_changes = 1
}
`
		const ds, back = "data.immutable_release_diff.latest", "data.immutable_release_diff.back"
		site := tfjsonpath.New("artifacts_changed").AtMapKey("site")
		config := tfjsonpath.New("artifacts_changed").AtMapKey("config")
		digestRe := knownvalue.StringRegexp(regexp.MustCompile(`^sha256:[0-9a-f]{64}$`))
		compareEqual := compare.ValuesSame()
		str := func(addr string, p tfjsonpath.Path, want string) statecheck.StateCheck {
			return statecheck.ExpectKnownValue(addr, p, knownvalue.StringExact(want))
		}
		num := func(addr string, p tfjsonpath.Path, want int64) statecheck.StateCheck {
			return statecheck.ExpectKnownValue(addr, p, knownvalue.Int64Exact(want))
		}
		lines := func(want ...string) knownvalue.Check {
			checks := make([]knownvalue.Check, len(want))
			for i, w := range want {
				checks[i] = knownvalue.StringExact(w)
			}
			return knownvalue.ListExact(checks)
		}
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: v1, ConfigStateChecks: []statecheck.StateCheck{version("1.0.0")}},
				{
					PreConfig: func() {
						e.write(map[string]string{"index.html": "<h1>v2</h1>\n", "js/app.js": "run()\n"})
						if err := os.Remove(filepath.Join(e.dir, "css", "site.css")); err != nil {
							t.Fatal(err)
						}
					},
					Config: v2(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
						planVersion("1.0.1"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), artifactChanges("+ api", "~ config", "- legacy", "~ site")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						version("1.0.1"),
						statecheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), artifactChanges("+ api", "~ config", "- legacy", "~ site")),
					},
				},
				{
					Config: v2(diffs),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionNoop),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						str(ds, tfjsonpath.New("id"), "web@1.0.0..1.0.1"),
						str(ds, tfjsonpath.New("to"), "1.0.1"),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("from_digest"), digestRe),
						statecheck.CompareValuePairs(ds, tfjsonpath.New("to_digest"), rel, tfjsonpath.New("digest"), compareEqual),
						statecheck.CompareValuePairs(ds, tfjsonpath.New("artifacts_added").AtMapKey("api"),
							"immutable_artifact.other", tfjsonpath.New("digest"), compareEqual),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("artifacts_added"), knownvalue.MapSizeExact(1)),
						statecheck.CompareValuePairs(ds, tfjsonpath.New("artifacts_removed").AtMapKey("legacy"),
							"immutable_artifact.other", tfjsonpath.New("digest"), compareEqual),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("artifacts_removed"), knownvalue.MapSizeExact(1)),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("artifacts_changed"), knownvalue.MapSizeExact(2)),
						statecheck.CompareValuePairs(ds, site.AtMapKey("to"), "immutable_artifact.site", tfjsonpath.New("digest"), compareEqual),
						statecheck.ExpectKnownValue(ds, site.AtMapKey("from"), digestRe),
						num(ds, site.AtMapKey("files_added"), 1),
						num(ds, site.AtMapKey("files_removed"), 1),
						num(ds, site.AtMapKey("files_changed"), 1),
						statecheck.ExpectKnownValue(ds, site.AtMapKey("file_changes"), lines("- css/site.css", "~ index.html", "+ js/app.js")),
						// A file artifact: its digests, no file lines.
						statecheck.CompareValuePairs(ds, config.AtMapKey("to"), "immutable_artifact.config", tfjsonpath.New("digest"), compareEqual),
						statecheck.ExpectKnownValue(ds, config.AtMapKey("files_changed"), knownvalue.Null()),
						statecheck.ExpectKnownValue(ds, config.AtMapKey("file_changes"), knownvalue.Null()),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("metadata_added"), knownvalue.MapExact(map[string]knownvalue.Check{
							"git_sha": knownvalue.StringExact("abc123"),
						})),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("metadata_removed"), knownvalue.MapExact(map[string]knownvalue.Check{
							"ticket": knownvalue.StringExact("OPS-1"),
						})),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("metadata_changed"), knownvalue.MapExact(map[string]knownvalue.Check{
							"environment": knownvalue.ObjectExact(map[string]knownvalue.Check{
								"from": knownvalue.StringExact("production"), "to": knownvalue.StringExact("staging"),
							}),
						})),
						// Backwards, bounded to one line: the counts stay whole.
						str(back, tfjsonpath.New("id"), "web@1.0.1..1.0.0"),
						statecheck.ExpectKnownValue(back, tfjsonpath.New("artifacts_added"), knownvalue.MapSizeExact(1)),
						statecheck.ExpectKnownValue(back, tfjsonpath.New("artifacts_added").AtMapKey("legacy"), digestRe),
						num(back, site.AtMapKey("files_added"), 1),
						num(back, site.AtMapKey("files_removed"), 1),
						num(back, site.AtMapKey("files_changed"), 1),
						statecheck.ExpectKnownValue(back, site.AtMapKey("file_changes"), lines("+ css/site.css")),
						statecheck.ExpectKnownValue(back, tfjsonpath.New("metadata_changed").AtMapKey("environment"), knownvalue.ObjectExact(map[string]knownvalue.Check{
							"from": knownvalue.StringExact("staging"), "to": knownvalue.StringExact("production"),
						})),
					},
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release_diff\" \"x\" {\n  name = \"nope\"\n  from = \"1.0.0\"\n}\n",
					ExpectError: regexp.MustCompile(`(?s)Release not found.*"nope" has no published versions`),
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release_diff\" \"x\" {\n  name = \"web\"\n  from = \"0.9.0\"\n}\n",
					ExpectError: regexp.MustCompile(`(?s)Version not found.*no version 0\.9\.0.*newest\s+first: 1\.0\.1,\s+1\.0\.0`),
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release_diff\" \"x\" {\n  name = \"web\"\n  from = \"1.0.0\"\n  to = \"2.0.0\"\n}\n",
					ExpectError: regexp.MustCompile(`(?s)Version not found.*no version 2\.0\.0`),
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release_diff\" \"x\" {\n  name = \"web\"\n  from = \"latest\"\n}\n",
					ExpectError: regexp.MustCompile(`Invalid version`),
				},
				// A valid configuration last: the post-test destroy plans it.
				{Config: v2()},
			},
		})
	})
}
