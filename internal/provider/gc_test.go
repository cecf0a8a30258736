package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/gc"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccGC: releases published by real applies, then collected with
// keep-last 1. The workspace plans nothing afterwards (what it uses is
// kept); content reverted to a collected version is stored again and
// released under a new version (a collected one is never reused, and
// pinning it says why).
func TestAccGC(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		collect := func() {
			st := e.backend()
			// The applies' leases, as if their time had run out.
			keys, err := st.Backend().List(ctx, store.LeasesPrefix)
			must(t, err)
			d, ok := st.Backend().(store.Deleter)
			if !ok {
				t.Fatalf("%s cannot delete", st)
			}
			for _, k := range keys {
				must(t, d.Delete(ctx, k))
			}
			p := gc.DefaultPolicy()
			p.KeepLast = 1
			r, err := gc.Collect(ctx, st, p, gc.Options{Now: time.Now().Add(60 * 24 * time.Hour)})
			must(t, err)
			if !slices.Equal(r.Versions, []string{"web@1.0.0", "web@1.0.1"}) {
				t.Fatalf("collected:\n%s", r)
			}
		}
		checkVersionAndContent := func(v string) resource.TestCheckFunc {
			return func(s *terraformState) error {
				got := s.RootModule().Resources[rel].Primary.Attributes["version"]
				if got != v {
					return fmt.Errorf("version %s, want %s", got, v)
				}
				return e.backend().Verify(ctx, mustParse(s.RootModule().Resources["immutable_artifact.site"].Primary.Attributes["digest"]))
			}
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{PreConfig: func() { e.write(map[string]string{"index.html": "A\n"}) }, Config: e.releaseConfig(), Check: checkVersionAndContent("1.0.0")},
				{PreConfig: func() { e.write(map[string]string{"index.html": "B\n"}) }, Config: e.releaseConfig(), Check: checkVersionAndContent("1.0.1")},
				{PreConfig: func() { e.write(map[string]string{"index.html": "C\n"}) }, Config: e.releaseConfig(), Check: checkVersionAndContent("1.0.2")},
				{
					// What the workspace uses is kept: nothing to do.
					PreConfig:          collect,
					Config:             e.releaseConfig(),
					ConfigPlanChecks:   resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
					Check:              checkVersionAndContent("1.0.2"),
					ExpectNonEmptyPlan: false,
				},
				{
					// A collected version cannot be pinned again.
					Config:      e.releaseConfig(`version = "1.0.0"`),
					ExpectError: regexp.MustCompile(`(?s)1\.0\.0.*deleted\s+by\s+the\s+store's\s+retention`),
				},
				{
					// Back to A, whose version was collected: stored again,
					// released as a new version.
					PreConfig: func() { e.write(map[string]string{"index.html": "A\n"}) },
					Config:    e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_artifact.site", plancheck.ResourceActionReplace),
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
					}},
					Check: checkVersionAndContent("1.0.3"),
				},
			},
		})
	})
}

// TestAccGC_yanked: a yanked version and one that was not, both collected.
// The workspace that yanked it plans nothing (with a warning) and can drop
// its immutable_yank without error; the yank stays and keeps the content
// refused; a pin of a collected version and a new yank of one say why.
func TestAccGC_yanked(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		yank := `
resource "immutable_yank" "bad" {
  name    = "web"
  version = "1.0.0"
  reason  = "breaks login"
}
`
		collect := func() {
			st := e.backend()
			e.deleteKeys(store.LeasesPrefix)
			p := gc.DefaultPolicy()
			p.KeepLast, p.KeepYankedFor = 1, 24*time.Hour
			r, err := gc.Collect(ctx, st, p, gc.Options{Now: time.Now().Add(60 * 24 * time.Hour)})
			must(t, err)
			if !slices.Equal(r.Versions, []string{"web@1.0.0", "web@1.0.1"}) {
				t.Fatalf("collected:\n%s", r)
			}
		}
		stillYanked := func(*terraformState) error {
			y, err := release.YankState(ctx, e.backend().Backend(), "web", "1.0.0")
			if err != nil || y == nil || !y.Yanked || y.Reason != "breaks login" {
				return fmt.Errorf("yank state of 1.0.0: %+v, %v", y, err)
			}
			return nil
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{PreConfig: func() { e.write(map[string]string{"index.html": "A\n"}) }, Config: e.releaseConfig()},
				{PreConfig: func() { e.write(map[string]string{"index.html": "B\n"}) }, Config: e.releaseConfig() + yank},
				{PreConfig: func() { e.write(map[string]string{"index.html": "C\n"}) }, Config: e.releaseConfig() + yank},
				{
					PreConfig:        collect,
					Config:           e.releaseConfig() + yank,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
					Check:            stillYanked,
				},
				{
					// Dropped: forgotten, not un-yanked (there is nothing to un-yank).
					Config: e.releaseConfig(),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_yank.bad", plancheck.ResourceActionDestroy),
					}},
					Check: stillYanked,
				},
				{
					PreConfig:   func() { e.write(map[string]string{"index.html": "A\n"}) },
					Config:      e.releaseConfig(),
					ExpectError: regexp.MustCompile(`(?s)Content of a yanked version.*web@1\.0\.0.*later\s+deleted\s+by\s+the\s+store's\s+retention`),
				},
				{
					PreConfig: func() { e.write(map[string]string{"index.html": "C\n"}) },
					Config: e.releaseConfig() + `
data "immutable_release" "pinned" {
  name    = "web"
  version = "1.0.1"
}
`,
					ExpectError: regexp.MustCompile(`(?s)No matching version.*1\.0\.1\s+was\s+published\s+and\s+later\s+deleted\s+by\s+the\s+store's\s+retention`),
				},
				{
					Config:      e.releaseConfig() + strings.ReplaceAll(yank, "1.0.0", "1.0.1"),
					ExpectError: regexp.MustCompile(`(?s)Version deleted by retention.*web@1\.0\.1 is not published any more.*remove this\s+immutable_yank`),
				},
				{
					Config: e.releaseConfig() + `
resource "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
  version = "1.0.1"
}
`,
					ExpectError: regexp.MustCompile(`(?s)Version deleted by retention.*never\s+published\s+again`),
				},
			},
		})
	})
}

// TestAccGC_yankDestroyed: a new reason for a yank whose version was
// collected fails at apply, saying so; `tofu destroy` of it is not stopped
// by the plan it makes first, and leaves the yank as it was.
func TestAccGC_yankDestroyed(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		st := e.backend()
		for _, v := range []string{"1.0.0", "1.0.1"} {
			_, err := st.PutBlob(ctx, digest.Bytes([]byte(v)), strings.NewReader(v))
			must(t, err)
			_, err = release.WriteRecord(ctx, st.Backend(), &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"v": digestOfBytes(v)}}, time.Now())
			must(t, err)
		}
		yank := func(reason string) string {
			return e.providerBlock() + fmt.Sprintf(`
resource "immutable_yank" "bad" {
  name    = "web"
  version = "1.0.0"
  reason  = %q
}
`, reason)
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: yank("breaks login")},
				{
					// A new reason: a warning at plan (so that destroy is not
					// stopped), and at apply an error that says why.
					PreConfig: func() {
						e.deleteKeys(store.LeasesPrefix)
						p := gc.DefaultPolicy()
						p.KeepLast, p.KeepYankedFor = 1, 24*time.Hour
						r, err := gc.Collect(ctx, e.backend(), p, gc.Options{Now: time.Now().Add(60 * 24 * time.Hour)})
						must(t, err)
						if !slices.Equal(r.Versions, []string{"web@1.0.0"}) {
							t.Fatalf("collected:\n%s", r)
						}
					},
					Config:      yank("breaks login and signup"),
					ExpectError: regexp.MustCompile(`(?s)Version deleted by retention.*web@1\.0\.0 is not published any more.*cannot\s+be\s+written\s+or\s+changed;\s+nothing\s+was\s+written.*Remove\s+this\s+immutable_yank`),
				},
				{
					Config:  yank("breaks login and signup"),
					Destroy: true,
					Check: func(*terraformState) error {
						y, err := release.YankState(ctx, e.backend().Backend(), "web", "1.0.0")
						if err != nil || y == nil || !y.Yanked || y.Reason != "breaks login" {
							return fmt.Errorf("yank after destroy: %+v, %v", y, err)
						}
						return nil
					},
				},
			},
		})
	})
}
