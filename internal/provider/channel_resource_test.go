package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestAccChannel: channels move by write-once entries, plan from → to and
// the artifacts that change, refuse a version not published, yanked, or
// not yet on a gate channel, roll back by moving back, follow a move made
// elsewhere, lose a race with an error that says to plan again, and are
// read by a data source with their history.
func TestAccChannel(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
			must(t, err)
		}
		_, err := release.SetYank(ctx, b, "web", "1.2.0", true, "breaks login", release.AnySeq, time.Now())
		must(t, err)
		cfg := func(staging, prod string) string {
			return e.providerBlock() + fmt.Sprintf(`
resource "immutable_channel" "staging" {
  release = "web"
  channel = "staging"
  version = %q
}
resource "immutable_channel" "prod" {
  release  = "web"
  channel  = "prod"
  version  = %q
  requires = ["staging"]
  reason   = "promoted"
}
`, staging, prod)
		}
		follow := `
data "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
}
`
		version := func(addr, v string) statecheck.StateCheck {
			return statecheck.ExpectKnownValue(addr, tfjsonpath.New("version"), knownvalue.StringExact(v))
		}
		// staging alone, then prod.
		stagingOnly := func(v string) string {
			return e.providerBlock() + fmt.Sprintf(`
resource "immutable_channel" "staging" {
  release = "web"
  channel = "staging"
  version = %q
}
`, v)
		}
		var moveHook testHook
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6With(hooks{beforeMove: moveHook.run}),
			Steps: []resource.TestStep{
				{
					Config:      cfg("1.0.0", "1.0.0"),
					ExpectError: regexp.MustCompile(`(?s)Gate refuses the move.*web@1.0.0 was never on the channel\s+staging`),
				},
				{
					Config: stagingOnly("1.0.0"),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_channel.staging", tfjsonpath.New("move"), knownvalue.Int64Exact(1)),
						statecheck.ExpectKnownValue("immutable_channel.staging", tfjsonpath.New("previous_version"), knownvalue.Null()),
					},
				},
				{
					Config:            cfg("1.0.0", "1.0.0"),
					ConfigStateChecks: []statecheck.StateCheck{version("immutable_channel.prod", "1.0.0")},
				},
				{
					Config:      cfg("1.0.0", "1.1.0"),
					ExpectError: regexp.MustCompile(`(?s)Gate refuses the move.*web@1.1.0 was never on the channel\s+staging.*it had 1.0.0`),
				},
				{
					Config: cfg("1.1.0", "1.0.0"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_channel.staging", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("immutable_channel.staging", tfjsonpath.New("previous_version"), knownvalue.StringExact("1.0.0")),
						plancheck.ExpectKnownValue("immutable_channel.staging", tfjsonpath.New("artifact_changes"), knownvalue.ListExact([]knownvalue.Check{
							knownvalue.StringRegexp(regexp.MustCompile(`^~ site`)),
						})),
						plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionNoop),
					}},
				},
				{
					Config: cfg("1.1.0", "1.1.0") + follow,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionUpdate),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("move"), knownvalue.Int64Exact(2)),
					},
				},
				{
					Config:      cfg("1.2.0", "1.1.0"),
					ExpectError: regexp.MustCompile(`(?s)Version is yanked.*web@1.2.0\s+is\s+yanked.*breaks\s+login`),
				},
				{
					// Roll back prod: a move back, recorded after the others.
					Config: cfg("1.1.0", "1.0.0") + follow,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("previous_version"), knownvalue.StringExact("1.1.0")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("move"), knownvalue.Int64Exact(3)),
					},
				},
				{
					Config: cfg("1.1.0", "1.0.0") + follow,
					ConfigStateChecks: []statecheck.StateCheck{
						version("data.immutable_channel.prod", "1.0.0"),
						statecheck.ExpectKnownValue("data.immutable_channel.prod", tfjsonpath.New("history"), knownvalue.ListSizeExact(3)),
						statecheck.ExpectKnownValue("data.immutable_channel.prod", tfjsonpath.New("history").AtSliceIndex(2).AtMapKey("from"), knownvalue.StringExact("1.1.0")),
						statecheck.ExpectKnownValue("data.immutable_channel.prod", tfjsonpath.New("artifacts").AtMapKey("site"), knownvalue.StringExact(digestOfBytes("1.0.0"))),
					},
				},
				{
					// Moved elsewhere: refresh follows the store, the plan moves it back.
					PreConfig: func() {
						_, err := release.WriteMove(ctx, b, "web", "prod", 3, "1.0.0", "1.1.0", "by hand", time.Now())
						must(t, err)
					},
					Config: cfg("1.1.0", "1.0.0"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("previous_version"), knownvalue.StringExact("1.1.0")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("move"), knownvalue.Int64Exact(5)),
					},
				},
				{
					// A race: another apply moves prod between this plan and its
					// write. Exactly one move is written; this one says to plan again.
					PreConfig: func() {
						t.Cleanup(moveHook.set(func(context.Context) error {
							moveHook.set(nil)
							_, err := release.WriteMove(ctx, b, "web", "prod", 5, "1.0.0", "1.1.0", "the other apply", time.Now())
							return err
						}))
					},
					Config:      cfg("1.1.0", "1.1.0"),
					ExpectError: regexp.MustCompile(`(?s)Channel moved by another apply.*moved\s+by\s+another\s+apply\s+to\s+1.1.0.*plan\s+again`),
				},
			},
		})
		// Another configuration creating prod: refused, pointing at import.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:      cfg("1.1.0", "1.1.0"),
				ExpectError: regexp.MustCompile(`(?s)Channel exists.*import\s+it`),
			}},
		})
		hist, err := release.History(ctx, b, "web", "prod", 0)
		must(t, err)
		if len(hist) != 6 || hist[5].Reason != "the other apply" {
			t.Fatalf("prod's history: %d moves, last %+v", len(hist), hist[len(hist)-1])
		}
	})
}

// refusedAtPlanHint is what every refusal at plan ends with: the way to
// destroy anyway (core's destroy plans the configuration first).
const refusedAtPlanHint = `.*stops\s+` + "`terraform\\s+destroy`" + `\s+too.*` + "`terraform\\s+destroy\\s+-refresh=false`"

// TestAccChannel_refusedMove: a move of an existing channel that apply
// would refuse (past a gate, to a yanked version, to one never published)
// fails the plan with the error, as for a new channel: a plan that cannot
// apply never passes review. `tofu destroy -refresh=false` still destroys
// (forgets) the channel while the configuration names that version, and
// its history stays.
func TestAccChannel_refusedMove(t *testing.T) {
	for _, c := range []struct{ name, version, err string }{
		{"past a gate", "1.0.1", `(?s)Gate refuses the move.*web@1.0.1 was never on the channel\s+staging`},
		{"to a yanked version", "1.0.2", `(?s)Version is yanked.*web@1.0.2\s+is\s+yanked.*breaks\s+login`},
		{"to an unpublished version", "1.9.0", `(?s)Version not published.*web@1.9.0\s+is\s+not\s+published`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			b := e.backend().Backend()
			for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
				_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
				must(t, err)
			}
			_, err := release.SetYank(ctx, b, "web", "1.0.2", true, "breaks login", release.AnySeq, time.Now())
			must(t, err)
			staging := e.providerBlock() + `
resource "immutable_channel" "staging" {
  release = "web"
  channel = "staging"
  version = "1.0.0"
}
`
			cfg := func(prod string) string {
				return staging + fmt.Sprintf(`
resource "immutable_channel" "prod" {
  release  = "web"
  channel  = "prod"
  version  = %q
  requires = ["staging"]
}
`, prod)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				AdditionalCLIOptions:     &resource.AdditionalCLIOptions{Plan: resource.PlanOptions{NoRefresh: true}},
				Steps: []resource.TestStep{
					{Config: staging},
					{Config: cfg("1.0.0")},
					{Config: cfg(c.version), PlanOnly: true, ExpectError: regexp.MustCompile(c.err + refusedAtPlanHint)},
					{Config: cfg(c.version), ExpectError: regexp.MustCompile(c.err)},
					{
						Config:  cfg(c.version),
						Destroy: true,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionDestroy),
							plancheck.ExpectResourceAction("immutable_channel.staging", plancheck.ResourceActionDestroy),
						}},
					},
				},
			})
			if hist, err := release.History(ctx, b, "web", "prod", 0); err != nil || len(hist) != 1 || hist[0].To != "1.0.0" {
				t.Fatalf("prod's history after destroy: %v (%v), want the one move to 1.0.0", hist, err)
			}
		})
	}
}

// TestAccChannel_driftToARefusedVersion: prod was rolled back by hand off a
// version since yanked; the configuration still names it. The plan (a move
// back to the yanked version) fails, and so does a plain `tofu destroy`,
// whose first plan is an ordinary one that a provider cannot tell apart:
// the error says to destroy with -refresh=false.
func TestAccChannel_driftToARefusedVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.backend().Backend()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
		must(t, err)
	}
	cfg := e.providerBlock() + `
resource "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
  version = "1.0.1"
}
`
	refused := regexp.MustCompile(`(?s)Version is yanked.*web@1.0.1\s+is\s+yanked` + refusedAtPlanHint)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig: func() {
					_, err := release.SetYank(ctx, b, "web", "1.0.1", true, "broken", release.AnySeq, time.Now())
					must(t, err)
					_, err = release.WriteMove(ctx, b, "web", "prod", 1, "1.0.1", "1.0.0", "rolled back by hand", time.Now())
					must(t, err)
				},
				Config:      cfg,
				PlanOnly:    true,
				ExpectError: refused,
			},
			{Config: cfg, Destroy: true, ExpectError: refused},
		},
	})
}

// TestAccChannel_failedMoveDropsItsLease: a move that fails after holding
// its version (another apply moved the channel first) deletes its lease;
// nothing names the version for it.
func TestAccChannel_failedMoveDropsItsLease(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		for _, v := range []string{"1.0.0", "1.0.1"} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
			must(t, err)
		}
		cfg := func(v string) string {
			return e.providerBlock() + fmt.Sprintf(`
resource "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
  version = %q
}
`, v)
		}
		leases := func() []string {
			keys, err := b.List(ctx, store.LeasesPrefix)
			must(t, err)
			return keys
		}
		var before []string
		var moveHook testHook
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6With(hooks{beforeMove: moveHook.run}),
			Steps: []resource.TestStep{
				{Config: cfg("1.0.0")},
				{
					PreConfig: func() {
						before = leases()
						t.Cleanup(moveHook.set(func(context.Context) error {
							moveHook.set(nil)
							_, err := release.WriteMove(ctx, b, "web", "prod", 1, "1.0.0", "1.0.1", "the other apply", time.Now())
							return err
						}))
					},
					Config:      cfg("1.0.1"),
					ExpectError: regexp.MustCompile(`(?s)Channel moved by another apply`),
				},
			},
		})
		if after := leases(); !slices.Equal(after, before) {
			t.Fatalf("leases after the failed move: %v, want %v", after, before)
		}
	})
}

// TestChannelCreateRefusesInvalidInput: as
// TestReleaseCreateRefusesInvalidInput, for a channel's move.
func TestChannelCreateRefusesInvalidInput(t *testing.T) {
	for _, tc := range []struct {
		what            string
		channel, reason string
		requires        []string
		want            diag.Diagnostics
	}{
		{"a bad channel", "Prod", "", nil, atPlan(channelValidator, path.Root("channel"), "Prod")},
		{"a bad reason", "prod", "roll\u202eback", nil, atPlan(reasonValidator, path.Root("reason"), "roll\u202eback")},
		{"a bad gate", "prod", "", []string{"staging", "QA"}, atPlan(channelValidator, path.Root("requires").AtListIndex(1), "QA")},
	} {
		b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
		must(t, err)
		_, err = release.WriteRecord(context.Background(), b, &release.Record{Name: "web", Version: "1.0.0"}, time.Now())
		must(t, err)
		st := store.New(b)
		reason := types.StringNull()
		if tc.reason != "" {
			reason = types.StringValue(tc.reason)
		}
		requires := types.ListNull(types.StringType)
		if tc.requires != nil {
			requires, _ = types.ListValueFrom(context.Background(), types.StringType, tc.requires)
		}
		got := callCreate(t, &ChannelResource{data: newProviderData(st, nil)}, &channelModel{
			ID: types.StringValue("web/" + tc.channel), Release: types.StringValue("web"), Channel: types.StringValue(tc.channel),
			Version: types.StringValue("1.0.0"), Reason: reason, Requires: requires, PreviousVersion: types.StringNull(),
			Move: types.Int64Unknown(), MovedAt: types.StringUnknown(),
			Artifacts: stringMap(map[string]string{}), ArtifactChanges: types.ListValueMust(types.StringType, nil),
			ImageTags: types.MapNull(types.StringType), ImageTagTargets: types.MapNull(types.StringType),
		})
		if len(tc.want) != 1 || !got.Equal(tc.want) {
			t.Errorf("%s: Create said %v, want what the plan says: %v", tc.what, got, tc.want)
		}
		noLease(t, st)
	}
}

// TestChannelCreateInterrupted: a move stopped after its checks, before
// its write (the BeforeWrite hook failing, as a cancelled apply does
// there), is reported as interrupted with nothing written, not as a
// refusal of the version, and leaves no lease.
func TestChannelCreateInterrupted(t *testing.T) {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	_, err = release.WriteRecord(context.Background(), b, &release.Record{Name: "web", Version: "1.0.0"}, time.Now())
	must(t, err)
	st := store.New(b)
	d := newProviderData(st, nil)
	d.hooks.beforeMove = func(context.Context) error { return context.Canceled }
	got := callCreate(t, &ChannelResource{data: d}, &channelModel{
		ID: types.StringValue("web/prod"), Release: types.StringValue("web"), Channel: types.StringValue("prod"),
		Version: types.StringValue("1.0.0"), Reason: types.StringNull(), Requires: types.ListNull(types.StringType),
		PreviousVersion: types.StringNull(), Move: types.Int64Unknown(), MovedAt: types.StringUnknown(),
		Artifacts: stringMap(map[string]string{}), ArtifactChanges: types.ListValueMust(types.StringType, nil),
		ImageTags: types.MapNull(types.StringType), ImageTagTargets: types.MapNull(types.StringType),
	})
	if len(got) != 1 || got[0].Summary() != "Move interrupted" || !strings.Contains(got[0].Detail(), "Nothing was written") {
		t.Fatalf("Create said %v, want one \"Move interrupted\" error", got)
	}
	if h, err := release.History(context.Background(), b, "web", "prod", 0); err != nil || len(h) != 0 {
		t.Fatalf("history %v, %v; want no move", h, err)
	}
	if leases, err := b.List(context.Background(), store.LeasesPrefix); err != nil || len(leases) != 0 {
		t.Fatalf("leases %v, %v; want the move's lease dropped", leases, err)
	}
}
