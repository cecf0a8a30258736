package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
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

// TestAccYank: a yanked version is skipped by the latest and by
// constraints, resolves with a warning when pinned exactly, stays yanked
// while its reason changes, and comes back when the yank is destroyed —
// each change a new entry in its history; a version never published
// cannot be yanked; a yank imports by name@version.
func TestAccYank(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		st := e.backend()
		b := st.Backend()
		for _, v := range []string{"1.0.0", "1.0.1", "1.1.0"} {
			_, err := st.PutBlob(ctx, digest.Bytes([]byte(v)), strings.NewReader(v))
			must(t, err)
			_, err = release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"v": digestOfBytes(v)}}, time.Now())
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

// yankCall runs the yank resource's methods directly, on a local store,
// as the framework would: for what a test cannot see through tofu (a
// warning of a successful destroy) or cannot time (a yank made between
// plan and apply).
type yankCall struct {
	t      *testing.T
	r      *YankResource
	schema schema.Schema
}

func newYankCall(t *testing.T) (*yankCall, *store.Store) {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	st := store.New(b)
	r := &YankResource{data: &providerData{store: st}}
	var sr fwresource.SchemaResponse
	r.Schema(context.Background(), fwresource.SchemaRequest{}, &sr)
	return &yankCall{t: t, r: r, schema: sr.Schema}, st
}

func (c *yankCall) state(m yankModel) tfsdk.State {
	s := tfsdk.State{Schema: c.schema}
	if d := s.Set(context.Background(), &m); d.HasError() {
		c.t.Fatal(d)
	}
	return s
}

func (c *yankCall) create(m yankModel) diag.Diagnostics {
	plan := c.state(m)
	resp := fwresource.CreateResponse{State: tfsdk.State{Schema: c.schema}}
	c.r.Create(context.Background(), fwresource.CreateRequest{Plan: tfsdk.Plan{Schema: c.schema, Raw: plan.Raw}}, &resp)
	return resp.Diagnostics
}

func (c *yankCall) delete(m yankModel) diag.Diagnostics {
	var resp fwresource.DeleteResponse
	c.r.Delete(context.Background(), fwresource.DeleteRequest{State: c.state(m)}, &resp)
	return resp.Diagnostics
}

func plannedYank(name, version, reason string) yankModel {
	return yankModel{ID: types.StringUnknown(), Name: types.StringValue(name), Version: types.StringValue(version),
		Reason: types.StringValue(reason), YankedAt: types.StringUnknown(), Entry: types.Int64Unknown()}
}

// TestYankDestroyWarningsKeepTheName: the warnings of a destroy that
// leaves the yank as it is (someone yanked again since; the version was
// deleted by retention) print the release's name as it is, not recased
// to start a sentence ("Web@1.0.1").
func TestYankDestroyWarningsKeepTheName(t *testing.T) {
	ctx := context.Background()
	c, st := newYankCall(t)
	b := st.Backend()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"v": digestOfBytes(v)}}, time.Now())
		must(t, err)
	}
	mine, err := release.SetYank(ctx, b, "web", "1.0.1", true, "breaks login", release.AnySeq, time.Now())
	must(t, err)
	_, err = release.SetYank(ctx, b, "web", "1.0.1", true, "team B: memory leak", release.AnySeq, time.Now())
	must(t, err)
	state := func(version string, entry int) yankModel {
		m := plannedYank("web", version, "breaks login")
		m.ID, m.YankedAt, m.Entry = types.StringValue("web@"+version), types.StringValue(mine.At), types.Int64Value(int64(entry))
		return m
	}
	d := c.delete(state("1.0.1", mine.Seq))
	if d.HasError() || d.WarningsCount() != 1 || !strings.HasPrefix(d.Warnings()[0].Detail(), "web@1.0.1 was yanked by someone else") {
		t.Fatalf("destroy after another yank: %v", d)
	}

	// Collected (its tombstone written, its record gone), once yanked.
	_, err = release.SetYank(ctx, b, "web", "1.0.0", true, "breaks login", release.AnySeq, time.Now())
	must(t, err)
	must(t, b.Create(ctx, release.CollectedKey("web", "1.0.0"), strings.NewReader("gone\n")))
	del, ok := b.(store.Deleter)
	if !ok {
		t.Fatal("the local store cannot delete")
	}
	must(t, del.Delete(ctx, release.VersionKey("web", "1.0.0")))
	d = c.delete(state("1.0.0", 1))
	if d.HasError() || d.WarningsCount() != 1 || !strings.HasPrefix(d.Warnings()[0].Detail(), "web@1.0.0 is not published any more") {
		t.Fatalf("destroy of a collected version's yank: %v", d)
	}
}

// TestYankCreateWritesNoSecondYank: a version yanked by someone else
// between this plan and its apply is refused and gets no second entry,
// whatever the reason: with the same reason too, as at plan (adopting it
// made two configurations manage one yank, and the first to be destroyed
// un-yanked the version under the other).
func TestYankCreateWritesNoSecondYank(t *testing.T) {
	ctx := context.Background()
	c, st := newYankCall(t)
	b := st.Backend()
	_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"v": digestOfBytes("1.0.0")}}, time.Now())
	must(t, err)
	theirs, err := release.SetYank(ctx, b, "web", "1.0.0", true, "team B: memory leak", release.AnySeq, time.Now())
	must(t, err)
	d := c.create(plannedYank("web", "1.0.0", "breaks login"))
	if !d.HasError() || d.Errors()[0].Summary() != "Yank changed by someone else" ||
		!strings.HasPrefix(d.Errors()[0].Detail(), "web@1.0.0 was yanked by someone else") || !strings.Contains(d.Errors()[0].Detail(), "import it") {
		t.Fatalf("create over another yank: %v", d)
	}
	if y, err := release.YankState(ctx, b, "web", "1.0.0"); err != nil || y.Seq != theirs.Seq || y.Reason != theirs.Reason {
		t.Fatalf("after a refused create: %+v %v, want their entry %d still the last", y, err, theirs.Seq)
	}
	if d := c.create(plannedYank("web", "1.0.0", "team B: memory leak")); !d.HasError() || d.Errors()[0].Summary() != "Yank changed by someone else" ||
		!strings.Contains(d.Errors()[0].Detail(), "import it") {
		t.Fatalf("create of the same yank: %v", d)
	}
	if y, err := release.YankState(ctx, b, "web", "1.0.0"); err != nil || y.Seq != theirs.Seq {
		t.Fatalf("after a refused create of the same yank: %+v %v, want no new entry", y, err)
	}
}

// TestAccYank_alreadyYanked: a yank of a version someone else yanked
// already is refused at plan, whatever its reason, and writes no second
// entry; importing that yank, as the error says, takes it over.
func TestAccYank_alreadyYanked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.backend().Backend()
	_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: "1.0.1", Artifacts: map[string]string{"v": digestOfBytes("1.0.1")}}, time.Now())
	must(t, err)
	_, err = release.SetYank(ctx, b, "web", "1.0.1", true, "team B: memory leak", release.AnySeq, time.Now())
	must(t, err)
	yank := func(reason string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_yank" "bad" {
  name    = "web"
  version = "1.0.1"
  reason  = %q
}
`, reason)
	}
	oneEntry := func() {
		t.Helper()
		keys, err := b.List(ctx, "releases/web/yanks/1.0.1/")
		if err != nil || len(keys) != 1 {
			t.Fatalf("yank entries %v (%v), want the one team B wrote", keys, err)
		}
	}
	refused := regexp.MustCompile(`(?s)Version already yanked.*web@1.0.1 is yanked already.*team B: memory leak.*terraform\s+import\s+<address>\s+web@1.0.1`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: yank("breaks login"), PlanOnly: true, ExpectError: refused},
			{Config: yank("breaks login"), ExpectError: refused},
			{PreConfig: oneEntry, Config: yank("team B: memory leak"), ExpectError: refused},
			{
				PreConfig: oneEntry,
				Config: yank("team B: memory leak") + `
import {
  to = immutable_yank.bad
  id = "web@1.0.1"
}
`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_yank.bad", plancheck.ResourceActionNoop),
				}},
			},
			{
				PreConfig: oneEntry,
				Config:    yank("breaks login"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_yank.bad", plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraformState) error {
					if y, err := release.YankState(ctx, b, "web", "1.0.1"); err != nil || y == nil || y.Seq != 2 || !y.Yanked || y.Reason != "breaks login" {
						return fmt.Errorf("last entry %+v (%v), want entry 2: the imported yank's new reason", y, err)
					}
					return nil
				},
			},
		},
	})
}

// TestAccYank_alreadyYankedStopsDestroy: a yank not applied yet, of a
// version someone else yanked, is refused at plan; `tofu destroy`, which
// plans the configuration first, is refused too, and the error says to
// destroy with -refresh=false, which does. The stored reason is shown as
// usertext.Show shows it: as written.
func TestAccYank_alreadyYankedStopsDestroy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.backend().Backend()
	_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: "1.0.1", Artifacts: map[string]string{"v": digestOfBytes("1.0.1")}}, time.Now())
	must(t, err)
	_, err = release.SetYank(ctx, b, "web", "1.0.1", true, "team B: memory leak", release.AnySeq, time.Now())
	must(t, err)
	base := e.providerBlock() + `
resource "immutable_release" "other" {
  name      = "other"
  artifacts = {}
}
`
	cfg := base + `
resource "immutable_yank" "bad" {
  name    = "web"
  version = "1.0.1"
  reason  = "breaks login"
}
`
	refused := regexp.MustCompile(`(?s)Version already yanked.*web@1.0.1 is yanked already.*\(entry\s+1,\s+\S+:\s+team\s+B:\s+memory\s+leak\).*import` + refusedAtPlanHint)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: base},
			{Config: cfg, PlanOnly: true, ExpectError: refused},
			{Config: cfg, Destroy: true, ExpectError: refused},
		},
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		AdditionalCLIOptions:     &resource.AdditionalCLIOptions{Plan: resource.PlanOptions{NoRefresh: true}},
		Steps: []resource.TestStep{
			{Config: base},
			{
				Config:  cfg,
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_release.other", plancheck.ResourceActionDestroy),
				}},
			},
		},
	})
	if y, err := release.YankState(ctx, b, "web", "1.0.1"); err != nil || y == nil || y.Seq != 1 || !y.Yanked {
		t.Fatalf("yank of 1.0.1 after all: %+v %v, want team B's entry 1 alone", y, err)
	}
}
