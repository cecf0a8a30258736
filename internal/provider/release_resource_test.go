package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

const rel = "immutable_release.web"

// releaseConfig: an artifact of the env's source dir and a release of it.
func (e *env) releaseConfig(extra ...string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}

resource "immutable_release" "web" {
  name      = "web"
  artifacts = { site = immutable_artifact.site.digest }
  metadata  = { environment = "production" }
  %s
}
`, e.dir, strings.Join(extra, "\n  "))
}

func version(v string) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(rel, tfjsonpath.New("version"), knownvalue.StringExact(v))
}

func planVersion(v string) plancheck.PlanCheck {
	return plancheck.ExpectKnownValue(rel, tfjsonpath.New("version"), knownvalue.StringExact(v))
}

// TestAccRelease_lifecycle: publish 1.0.0; no-op when unchanged; a change
// publishes 1.0.1 (replace, previous_version 1.0.0); version_bump alone is
// no replacement; a revert adopts 1.0.0 again with no new record.
func TestAccRelease_lifecycle(t *testing.T) {
	t.Parallel()
	forEveryStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		var publishedAt string
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionCreate),
						planVersion("1.0.0"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("id"), knownvalue.StringExact("web@1.0.0")),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:[0-9a-f]{64}$`))),
						plancheck.ExpectUnknownValue(rel, tfjsonpath.New("published_at")),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), knownvalue.Null()),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						version("1.0.0"),
						statecheck.ExpectKnownValue(rel, tfjsonpath.New("previous_version"), knownvalue.Null()),
						statecheck.ExpectKnownValue(rel, tfjsonpath.New("published_at"), knownvalue.StringFunc(func(v string) error {
							publishedAt = v
							if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(v) {
								return fmt.Errorf("published_at %q is not RFC 3339 UTC", v)
							}
							return nil
						})),
					},
				},
				{
					Config: e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
					}},
				},
				{
					PreConfig: func() { e.write(map[string]string{"index.html": "<h1>v2</h1>\n"}) },
					Config:    e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
						planVersion("1.0.1"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("previous_version"), knownvalue.StringExact("1.0.0")),
						// The plan names what the new version ships.
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), artifactChanges("~ site")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{version("1.0.1")},
				},
				{
					// version_bump alone changes no content: no replacement.
					Config: e.releaseConfig(`version_bump = "minor"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
						planVersion("1.0.1"),
					}},
				},
				{
					// git revert: the content of 1.0.0 again adopts 1.0.0.
					PreConfig: func() { e.write(siteFiles) },
					Config:    e.releaseConfig(`version_bump = "minor"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
						planVersion("1.0.0"),
						// Adopted: compared with 1.0.0's own previous version, none.
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), knownvalue.Null()),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("published_at"), knownvalue.StringFunc(func(v string) error {
							if v != publishedAt {
								return fmt.Errorf("adopted published_at %q, want the original %q", v, publishedAt)
							}
							return nil
						})),
					}},
					ConfigStateChecks: []statecheck.StateCheck{version("1.0.0")},
					Check: func(*terraformState) error {
						vs, _ := release.List(context.Background(), e.backend().Backend(), "web")
						if len(vs) != 2 {
							return fmt.Errorf("published versions %v, want 1.0.0 and 1.0.1 only", vs)
						}
						return nil
					},
				},
				{
					// A new change after the revert bumps from the highest, by minor.
					PreConfig: func() { e.write(map[string]string{"index.html": "<h1>v3</h1>\n"}) },
					Config:    e.releaseConfig(`version_bump = "minor"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						planVersion("1.1.0"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("previous_version"), knownvalue.StringExact("1.0.1")),
						// Against the store's 1.0.1, not the state's 1.0.0.
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("artifact_changes"), artifactChanges("~ site")),
					}},
				},
			},
		})
	})
}

// TestAccRelease_explicitVersions: an explicit version wins over adoption,
// backports are fine, and a version taken by other content is refused.
func TestAccRelease_explicitVersions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: e.releaseConfig(`version = "2.0.0"`), ConfigStateChecks: []statecheck.StateCheck{version("2.0.0")}},
				{
					// Same content, explicit backport: a new record at 1.4.3.
					Config: e.releaseConfig(`version = "1.4.3"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
						planVersion("1.4.3"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("previous_version"), knownvalue.Null()),
					}},
				},
				{
					PreConfig:   func() { e.write(map[string]string{"index.html": "<h1>other</h1>\n"}) },
					Config:      e.releaseConfig(`version = "2.0.0"`),
					ExpectError: regexp.MustCompile(`(?s)Version already published.*version 2\.0\.0 of release "web" is already\s+published with digest\s+sha256:[0-9a-f]{64}.*versions are immutable`),
				},
			},
		})
	})
}

// TestAccRelease_importAndRefresh: import by name@version; a deleted
// record leaves state; a tampered one is an error naming it.
func TestAccRelease_importAndRefresh(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		record := release.VersionKey("web", "1.0.0")
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: e.releaseConfig()},
				{
					ResourceName:      rel,
					ImportState:       true,
					ImportStateId:     "web@1.0.0",
					ImportStateVerify: true, // version_bump too: the default, as configured
				},
				{ResourceName: rel, ImportState: true, ImportStateId: "web", ExpectError: regexp.MustCompile(`Import a release as name@version`)},
				{ResourceName: rel, ImportState: true, ImportStateId: "Web@1.0.0", ExpectError: regexp.MustCompile(`not a valid release name`)},
				{ResourceName: rel, ImportState: true, ImportStateId: "web@9.9.9", ExpectError: regexp.MustCompile(`Cannot import non-existent remote object`)},
				{
					// Tampering: the record no longer matches its digest.
					PreConfig: func() {
						e.tamper(record, []byte(strings.Replace(string(e.read(record)), "production", "staging", 1)))
					},
					Config:      e.releaseConfig(),
					ExpectError: regexp.MustCompile(`(?s)Release record altered.*releases/web/versions/1\.0\.0`),
				},
				{
					// Gone: removed from state, published again on the next apply.
					PreConfig: func() { e.deleteKeys(record) },
					Config:    e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionCreate),
						planVersion("1.0.0"),
					}},
				},
			},
		})
	})
}

// TestAccRelease_badInput: each mistake is a clear diagnostic, and no
// release record is written.
func TestAccRelease_badInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	missing := digest.Bytes([]byte("never stored")).String()
	res := func(body string) string {
		return e.providerBlock() + "resource \"immutable_release\" \"x\" {\n" + body + "\n}\n"
	}
	for name, c := range map[string]struct{ config, err string }{
		"dot-dot name":      {res(`name = "../x"` + "\nartifacts = {}"), `(?s)Invalid release name.*lower-case letters`},
		"upper-case name":   {res(`name = "Web"` + "\nartifacts = {}"), `(?s)Invalid release name`},
		"empty name":        {res(`name = ""` + "\nartifacts = {}"), `(?s)Invalid release name.*empty`},
		"invalid version":   {res(`name = "web"` + "\nartifacts = {}\nversion = \"v1.2\""), `(?s)Invalid version.*drop the "v"`},
		"bad bump":          {res(`name = "web"` + "\nartifacts = {}\nversion_bump = \"huge\""), `(?s)Invalid Attribute Value Match.*patch`},
		"digest form":       {res(`name = "web"` + "\nartifacts = { site = \"md5:abc\" }"), `(?s)Invalid digest.*must start with "sha256:"`},
		"artifact missing":  {res(`name = "web"` + "\nartifacts = { site = \"" + missing + "\" }"), `(?s)Artifact not in the store.*"site".*Nothing was\s+published`},
		"constraint in ds":  {e.providerBlock() + "data \"immutable_release\" \"x\" {\n  name = \"web\"\n  version = \"~> banana\"\n}\n", `(?s)Invalid version constraint`},
		"no such release":   {e.providerBlock() + `data "immutable_release" "x" { name = "nothing" }`, `(?s)Release not found.*no published versions.*no\s+version\s+to\s+look\s+up.*Check\s+the\s+name`},
		"long version":      {res(`name = "web"` + "\nartifacts = {}\nversion = \"1.0.0-" + strings.Repeat("a", 300) + `"`), `(?s)Invalid version.*306\s+characters\s+long;\s+at\s+most\s+128`},
		"huge version":      {res(`name = "web"` + "\nartifacts = {}\nversion = \"99999999999999999999.0.0\""), `(?s)Invalid version.*too\s+large:\s+each\s+number\s+of\s+a\s+version\s+must\s+be\s+at\s+most\s+999999999999999`},
		"five-part version": {e.providerBlock() + "data \"immutable_release\" \"x\" {\n  name = \"web\"\n  version = \"1.0.0.0.0\"\n}\n", `(?s)Invalid version constraint.*has\s+5\s+numeric\s+parts.*at\s+most\s+three`},
		"huge constraint":   {e.providerBlock() + "data \"immutable_releases\" \"x\" {\n  name = \"web\"\n  constraint = \"~> 99999999999999999999.0\"\n}\n", `(?s)Invalid version constraint.*too large`},
		"bad artifact data": {e.providerBlock() + `data "immutable_artifact" "x" { digest = "` + missing + `" }`, `(?s)Artifact not in the store`},
	} {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps:                    []resource.TestStep{{Config: c.config, ExpectError: regexp.MustCompile(c.err)}},
			})
			if keys, _ := e.backend().Backend().List(context.Background(), "releases/"); len(keys) != 0 {
				t.Fatalf("bad input wrote a release: %v", keys)
			}
			// An apply that failed after holding its artifacts (artifact
			// missing) deleted its lease: nothing relies on them.
			if keys, err := e.backend().Backend().List(context.Background(), store.LeasesPrefix); err != nil || len(keys) != 0 {
				t.Fatalf("leases left behind: %v (%v)", keys, err)
			}
		})
	}
}

// TestAccReleaseDataSources: every lookup form, against versions
// published by the resource.
func TestAccReleaseDataSources(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		publish := func(v string) resource.TestStep {
			return resource.TestStep{
				PreConfig: func() { e.write(map[string]string{"index.html": v}) },
				Config:    e.releaseConfig(fmt.Sprintf("version = %q", v)),
			}
		}
		lookups := e.providerBlock() + `
data "immutable_release" "latest"   { name = "web" }
data "immutable_release" "exact"    {
  name = "web"
  version = "1.4.2"
}
data "immutable_release" "pessimistic" {
  name = "web"
  version = "~> 1.4"
}
data "immutable_release" "range"    {
  name = "web"
  version = ">= 1.0, < 1.4"
}
data "immutable_release" "rc"       {
  name = "web"
  version = "2.0.0-rc.1"
}
data "immutable_release" "with_pre" {
  name = "web"
  include_prereleases = true
}
data "immutable_releases" "all"     { name = "web" }
data "immutable_releases" "one_x"   {
  name = "web"
  constraint = "~> 1.0"
}
data "immutable_artifact" "site"    { digest = data.immutable_release.exact.artifacts["site"] }
`
		str := func(addr string, attr any, want string) statecheck.StateCheck {
			var p tfjsonpath.Path
			switch a := attr.(type) {
			case tfjsonpath.Path:
				p = a
			case string:
				p = tfjsonpath.New(a)
			default:
				t.Fatalf("attr is a %T; want a string or a tfjsonpath.Path", attr)
			}
			return statecheck.ExpectKnownValue(addr, p, knownvalue.StringExact(want))
		}
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				publish("1.0.0"), publish("1.4.2"), publish("1.10.0"), publish("2.0.0-rc.1"),
				{
					Config: lookups,
					ConfigStateChecks: []statecheck.StateCheck{
						str("data.immutable_release.latest", "resolved_version", "1.10.0"),
						str("data.immutable_release.exact", "resolved_version", "1.4.2"),
						str("data.immutable_release.exact", "previous_version", "1.0.0"),
						str("data.immutable_release.exact", tfjsonpath.New("metadata").AtMapKey("environment"), "production"),
						str("data.immutable_release.pessimistic", "resolved_version", "1.10.0"),
						str("data.immutable_release.range", "resolved_version", "1.0.0"),
						str("data.immutable_release.rc", "resolved_version", "2.0.0-rc.1"),
						str("data.immutable_release.with_pre", "resolved_version", "2.0.0-rc.1"),
						str("data.immutable_releases.all", "latest", "1.10.0"),
						statecheck.ExpectKnownValue("data.immutable_releases.all", tfjsonpath.New("versions"), knownvalue.ListSizeExact(3)),
						str("data.immutable_releases.all", tfjsonpath.New("versions").AtSliceIndex(1).AtMapKey("version"), "1.4.2"),
						statecheck.ExpectKnownValue("data.immutable_releases.one_x", tfjsonpath.New("versions"), knownvalue.ListSizeExact(3)),
						str("data.immutable_artifact.site", "kind", "directory"),
						statecheck.ExpectKnownValue("data.immutable_artifact.site", tfjsonpath.New("file_count"), knownvalue.Int64Exact(3)),
					},
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release\" \"x\" {\n  name = \"web\"\n  version = \"~> 3.0\"\n}\n",
					ExpectError: regexp.MustCompile(`(?s)No matching version.*"~> 3.0".*newest\s+first: 2\.0\.0-rc\.1, 1\.10\.0, 1\.4\.2, 1\.0\.0`),
				},
				{
					Config:      e.providerBlock() + "data \"immutable_release\" \"x\" {\n  name = \"web\"\n  version = \"1.4.9\"\n}\n",
					ExpectError: regexp.MustCompile(`(?s)No matching version.*"1.4.9"`),
				},
			},
		})
	})
}

// TestAccRelease_tooLarge: a release whose record would exceed
// release.MaxRecordSize (so it could never be read back) fails the plan
// naming `metadata` and the limit; with inputs unknown at plan, the apply
// refuses it the same way. Nothing is written either way.
func TestAccRelease_tooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"big.txt": strings.Repeat("x", release.MaxRecordSize)})
	big := filepath.Join(e.dir, "big.txt")
	tooLarge := regexp.MustCompile(fmt.Sprintf(`(?s)Release too large.*metadata.*a\s+release\s+record\s+may\s+be\s+at\s+most\s+%d\s+bytes.*Nothing\s+was\s+written`, release.MaxRecordSize))
	noRelease := func() {
		t.Helper()
		if keys, err := e.backend().Backend().List(context.Background(), "releases/"); err != nil || len(keys) != 0 {
			t.Fatalf("a refused release wrote %v (%v)", keys, err)
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.providerBlock() + fmt.Sprintf(`
resource "immutable_release" "big" {
  name      = "big"
  artifacts = {}
  metadata  = { notes = file(%q) }
}
`, big),
				PlanOnly:    true,
				ExpectError: tooLarge,
			},
			{
				// Unknown at plan (terraform_data's output): refused at apply.
				PreConfig: noRelease,
				Config: e.providerBlock() + fmt.Sprintf(`
resource "terraform_data" "later" {
  input = "known only at apply"
}

resource "immutable_release" "big" {
  name      = "big"
  artifacts = {}
  metadata  = { notes = file(%q), later = terraform_data.later.output }
}
`, big),
				ExpectError: tooLarge,
			},
			{PreConfig: noRelease, Config: e.providerBlock()},
		},
	})
}

// TestAccRelease_interruptedPublish: a publish whose second write fails,
// for real on a file store (a regular file put where a directory must be,
// at the moment of publishing), leaves no version that the next plan would
// duplicate: once the obstacle is gone, the plan picks 1.0.0 again and the
// apply publishes exactly one version. Then, with the state lost (as when
// the process is killed after the write), a new plan adopts 1.0.0.
func TestAccRelease_interruptedPublish(t *testing.T) {
	for _, obstacle := range []string{"digests", "versions"} {
		t.Run(obstacle, func(t *testing.T) {
			e := newEnv(t)
			e.write(siteFiles)
			blocker := filepath.Join(e.store, "releases", "web", obstacle)
			oneVersion := func(*terraformState) error {
				vs, err := release.List(context.Background(), e.backend().Backend(), "web")
				if err != nil || len(vs) != 1 || vs[0].Original() != "1.0.0" {
					return fmt.Errorf("published versions %v (%v), want exactly 1.0.0", vs, err)
				}
				return nil
			}
			var publishHook testHook
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6With(hooks{beforePublish: publishHook.run}),
				Steps: []resource.TestStep{
					{
						PreConfig: func() {
							t.Cleanup(publishHook.set(func(context.Context) error {
								if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
									return err
								}
								return os.WriteFile(blocker, []byte("in the way\n"), 0o644)
							}))
						},
						Config:      e.releaseConfig(),
						ExpectError: regexp.MustCompile(`(?s)Cannot write to the store.*not a directory`),
					},
					{
						PreConfig: func() {
							publishHook.set(nil)
							if err := os.Remove(blocker); err != nil {
								t.Fatal(err)
							}
						},
						Config: e.releaseConfig(),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(rel, plancheck.ResourceActionCreate),
							planVersion("1.0.0"),
							plancheck.ExpectUnknownValue(rel, tfjsonpath.New("published_at")),
						}},
						Check: oneVersion,
					},
				},
			})
			// A new state on the same store: the record is there, the state
			// that would name it is not.
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config: e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionCreate),
						planVersion("1.0.0"),
						plancheck.ExpectKnownValue(rel, tfjsonpath.New("published_at"), knownvalue.NotNull()),
					}},
					Check: oneVersion,
				}},
			})
		})
	}
}

// TestAccReleaseDataSources_noVersions: in the first plan of a new release,
// immutable_releases has an empty `versions` and a null `latest`, with or
// without a constraint; immutable_release, which must resolve one version,
// fails clearly.
func TestAccReleaseDataSources_noVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.releaseConfig() + `
data "immutable_releases" "before" { name = "web" }
data "immutable_releases" "stable" {
  name       = "web"
  constraint = "~> 1.0"
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					version("1.0.0"),
					statecheck.ExpectKnownValue("data.immutable_releases.before", tfjsonpath.New("versions"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("data.immutable_releases.before", tfjsonpath.New("latest"), knownvalue.Null()),
					statecheck.ExpectKnownValue("data.immutable_releases.stable", tfjsonpath.New("versions"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("data.immutable_releases.stable", tfjsonpath.New("latest"), knownvalue.Null()),
				},
			},
			{
				Config:      e.providerBlock() + `data "immutable_release" "x" { name = "other" }`,
				ExpectError: regexp.MustCompile(`(?s)Release not found.*"other"\s+has\s+no\s+published\s+versions.*data\.immutable_releases`),
			},
		},
	})
}

// artifactChanges checks artifact_changes lines by operation and name:
// "+ name" and "- name" stand for a line with the digest, "~ name" for one
// with the old and the new digest.
func artifactChanges(want ...string) knownvalue.Check {
	const sum = `sha256:[0-9a-f]{64}`
	checks := make([]knownvalue.Check, len(want))
	for i, w := range want {
		tail := " " + sum
		if strings.HasPrefix(w, "~ ") {
			tail = " " + sum + " -> " + sum
		}
		checks[i] = knownvalue.StringRegexp(regexp.MustCompile("^" + regexp.QuoteMeta(w) + tail + "$"))
	}
	return knownvalue.ListExact(checks)
}

// callCreate runs r's Create directly, as the framework would, with
// model as the plan and the configuration: for input Terraform validates
// again before apply, so that a test through tofu never reaches Create
// with it.
func callCreate(t *testing.T, r fwresource.Resource, model any) diag.Diagnostics {
	t.Helper()
	ctx := context.Background()
	var sr fwresource.SchemaResponse
	r.Schema(ctx, fwresource.SchemaRequest{}, &sr)
	plan := tfsdk.State{Schema: sr.Schema}
	if d := plan.Set(ctx, model); d.HasError() {
		t.Fatal(d)
	}
	resp := fwresource.CreateResponse{State: tfsdk.State{Schema: sr.Schema}}
	r.Create(ctx, fwresource.CreateRequest{
		Plan:   tfsdk.Plan{Schema: sr.Schema, Raw: plan.Raw},
		Config: tfsdk.Config{Schema: sr.Schema, Raw: plan.Raw},
	}, &resp)
	return resp.Diagnostics
}

// atPlan is the diagnostic v gives at plan for value at p.
func atPlan(v stringCheck, p path.Path, value string) diag.Diagnostics {
	var resp validator.StringResponse
	v.ValidateString(context.Background(), validator.StringRequest{Path: p, ConfigValue: types.StringValue(value)}, &resp)
	return resp.Diagnostics
}

// noLease fails if st holds a lease or the store's identity: what a
// write that took its lease leaves.
func noLease(t *testing.T, st *store.Store) {
	t.Helper()
	keys, err := st.Backend().List(context.Background(), "gc/")
	must(t, err)
	if len(keys) != 0 {
		t.Errorf("the store holds %v, want no lease and no identity", keys)
	}
}

// TestReleaseCreateRefusesInvalidInput: input that reaches Create
// unvalidated (unknown at plan) is refused as its validator refuses it at
// plan, on the attribute, before any lease: nothing is written, not even
// the store's identity.
func TestReleaseCreateRefusesInvalidInput(t *testing.T) {
	for _, tc := range []struct {
		what     string
		name     string
		version  string
		metadata map[string]string
		images   map[string]string
		want     diag.Diagnostics
	}{
		{"a bad name", "Web", "1.0.0", nil, nil, atPlan(releaseNameValidator, path.Root("name"), "Web")},
		{"a bad metadata key", "web", "1.0.0", map[string]string{"k\u202e": "v"}, nil, atPlan(metadataKeyValidator, path.Root("metadata").AtMapKey("k\u202e"), "k\u202e")},
		{"an image by tag", "web", "1.0.0", nil, map[string]string{"api": "registry.example/api:1.0"},
			atPlan(imageRefValidator, path.Root("images").AtMapKey("api"), "registry.example/api:1.0")},
		{"a bad image name", "web", "1.0.0", nil, map[string]string{"a\u200bpi": "registry.example/api@" + digest.Bytes(nil).String()},
			atPlan(imageNameValidator, path.Root("images").AtMapKey("a\u200bpi"), "a\u200bpi")},
	} {
		b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
		must(t, err)
		st := store.New(b)
		meta := types.MapNull(types.StringType)
		if tc.metadata != nil {
			meta = stringMap(tc.metadata)
		}
		images := types.MapNull(types.StringType)
		if tc.images != nil {
			images = stringMap(tc.images)
		}
		got := callCreate(t, &ReleaseResource{data: newProviderData(st, nil)}, &releaseModel{
			ID: types.StringValue(tc.name + "@" + tc.version), Name: types.StringValue(tc.name),
			Artifacts: stringMap(map[string]string{}), Metadata: meta, Images: images,
			Version: types.StringValue(tc.version), VersionBump: types.StringValue("patch"),
			Digest: types.StringUnknown(), PreviousVersion: types.StringNull(), PublishedAt: types.StringUnknown(),
			ArtifactChanges: types.ListNull(types.StringType),
		})
		if len(tc.want) != 1 || !got.Equal(tc.want) {
			t.Errorf("%s: Create said %v, want what the plan says: %v", tc.what, got, tc.want)
		}
		noLease(t, st)
	}
}
