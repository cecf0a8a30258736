package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
)

// TestAccYank: a yanked version is skipped by the latest and by
// constraints, resolves with a warning when pinned exactly, stays yanked
// while its reason changes, and comes back when the yank is destroyed —
// each change a new entry in its history; a version never published
// cannot be yanked; a yank imports by name@version.
func TestAccYank(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		st := e.backend()
		b := st.Backend()
		for _, v := range []string{"1.0.0", "1.0.1", "1.1.0"} {
			_, err := st.PutBlob(ctx, digest.Bytes([]byte(v)), strings.NewReader(v))
			must(t, err)
			_, err = release.Publish(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"v": digestOfBytes(v)}}, time.Now())
			must(t, err)
		}
		lookups := `
data "immutable_release" "latest" {
  name = "web"
}
data "immutable_release" "compatible" {
  name    = "web"
  version = "~> 1.0.0"
}
data "immutable_release" "pinned" {
  name    = "web"
  version = "1.0.1"
}
data "immutable_releases" "all" {
  name = "web"
}
`
		yank := func(version, reason string) string {
			return fmt.Sprintf(`
resource "immutable_yank" "bad" {
  name    = "web"
  version = %q
  reason  = %q
}
`, version, reason)
		}
		entries := func(want int) resource.TestCheckFunc {
			return func(*terraformState) error {
				keys, err := b.List(ctx, "releases/web/yanks/1.1.0/")
				if err != nil || len(keys) != want {
					return fmt.Errorf("yank entries %v (%v), want %d", keys, err, want)
				}
				return nil
			}
		}
		resolved := func(addr, v string) statecheck.StateCheck {
			return statecheck.ExpectKnownValue(addr, tfjsonpath.New("resolved_version"), knownvalue.StringExact(v))
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config:      e.providerBlock() + yank("1.2.0", "never published"),
					ExpectError: regexp.MustCompile(`(?s)Version not published.*web@1.2.0`),
				},
				{
					Config: e.providerBlock() + yank("1.1.0", "breaks login") + lookups,
					ConfigStateChecks: []statecheck.StateCheck{
						resolved("data.immutable_release.latest", "1.1.0"), // read before the yank, in the same plan
					},
					Check: entries(1),
				},
				{
					Config: e.providerBlock() + yank("1.1.0", "breaks login") + lookups,
					ConfigStateChecks: []statecheck.StateCheck{
						resolved("data.immutable_release.latest", "1.0.1"),
						resolved("data.immutable_release.compatible", "1.0.1"),
						statecheck.ExpectKnownValue("data.immutable_releases.all", tfjsonpath.New("latest"), knownvalue.StringExact("1.0.1")),
						statecheck.ExpectKnownValue("data.immutable_releases.all", tfjsonpath.New("versions").AtSliceIndex(2).AtMapKey("yanked"), knownvalue.Bool(true)),
						statecheck.ExpectKnownValue("data.immutable_releases.all", tfjsonpath.New("versions").AtSliceIndex(2).AtMapKey("yank_reason"), knownvalue.StringExact("breaks login")),
					},
				},
				{
					// Pinned exactly (also as "= 1.1.0"): resolves, flagged. The
					// diff's default `to` skips it as the latest does.
					Config: e.providerBlock() + yank("1.1.0", "breaks login") + `
data "immutable_release" "pinned_yanked" {
  name    = "web"
  version = "1.1.0"
}
data "immutable_release" "pinned_as_constraint" {
  name    = "web"
  version = "= 1.1.0"
}
data "immutable_release_diff" "since" {
  name = "web"
  from = "1.0.0"
}
`,
					ConfigStateChecks: []statecheck.StateCheck{
						resolved("data.immutable_release.pinned_yanked", "1.1.0"),
						statecheck.ExpectKnownValue("data.immutable_release.pinned_yanked", tfjsonpath.New("yanked"), knownvalue.Bool(true)),
						resolved("data.immutable_release.pinned_as_constraint", "1.1.0"),
						statecheck.ExpectKnownValue("data.immutable_release_diff.since", tfjsonpath.New("to"), knownvalue.StringExact("1.0.1")),
					},
				},
				{
					// Publishing the yanked version's content again, with no
					// version, is refused: it would bring the broken one back.
					Config: e.providerBlock() + yank("1.1.0", "breaks login") + `
resource "immutable_release" "again" {
  name      = "web"
  artifacts = { v = "` + digestOfBytes("1.1.0") + `" }
}
`,
					ExpectError: regexp.MustCompile(`(?s)Content of a yanked version.*web@1.1.0, which is yanked`),
				},
				{
					Config: e.providerBlock() + yank("1.1.0", "breaks login and signup") + lookups,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_yank.bad", plancheck.ResourceActionUpdate),
					}},
					ConfigStateChecks: []statecheck.StateCheck{resolved("data.immutable_release.latest", "1.0.1")},
					Check:             entries(2),
				},
				{
					ResourceName:      "immutable_yank.bad",
					ImportState:       true,
					ImportStateId:     "web@1.1.0",
					ImportStateVerify: true,
				},
				{
					// Destroyed: un-yanked by a new entry.
					Config: e.providerBlock() + lookups,
					Check:  entries(3),
				},
				{
					Config: e.providerBlock() + yank("1.1.0", "breaks login") + lookups,
					Check:  entries(4),
				},
				{
					// Someone else yanks it again with their reason; destroying
					// this yank then leaves theirs in effect.
					PreConfig: func() {
						_, err := release.SetYank(ctx, b, "web", "1.1.0", true, "team B: memory leak", release.AnySeq, time.Now())
						must(t, err)
					},
					Config: e.providerBlock() + lookups,
					Check: func(*terraformState) error {
						y, err := release.YankState(ctx, b, "web", "1.1.0")
						if err != nil || y == nil || !y.Yanked || y.Reason != "team B: memory leak" {
							return fmt.Errorf("after destroy: %+v %v, want team B's yank in effect", y, err)
						}
						return nil
					},
				},
				{
					PreConfig: func() {
						_, err := release.SetYank(ctx, b, "web", "1.1.0", false, "team B: fixed", release.AnySeq, time.Now())
						must(t, err)
					},
					Config: e.providerBlock() + lookups,
				},
				{
					Config:            e.providerBlock() + lookups,
					ConfigStateChecks: []statecheck.StateCheck{resolved("data.immutable_release.latest", "1.1.0")},
				},
			},
		})
		y, err := release.YankState(ctx, b, "web", "1.1.0")
		if err != nil || y == nil || y.Yanked || y.Seq != 6 {
			t.Fatalf("last entry %+v %v", y, err)
		}
	})
}
