package provider

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccTrust_reads: under a trust policy, what decides a resolved
// version and what a data source lists are checked, and an untrusted
// record is refused at plan, naming it and what to do: a yank by an
// untrusted key that would move `~> 1.0` down (immutable_release,
// immutable_releases, immutable_release_diff's default `to`), the yank
// flagging the version a channel points to, an unsigned un-yank letting a
// channel move to a yanked version, an unsigned version low in a list,
// an unsigned older move in a channel's history is left out of it. A
// trusted yank decides as before; a history_limit leaving out the
// unsigned move reads.
func TestAccTrust_reads(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keys := t.TempDir()
		_, ci := writeSigningKey(t, t.TempDir())
		_, rogue := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, keys, "ci.pub", ci)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v}, now)
			must(t, err)
			_, err = release.Countersign(ctx, b, ci, "web", v)
			must(t, err)
		}
		yank := func(v string, yanked bool, s *signature.Signer) string {
			var opts []release.Option
			if s != nil {
				opts = append(opts, release.SignWith(s))
			}
			y, err := release.SetYank(ctx, b, "web", v, yanked, "broken", release.AnySeq, now, opts...)
			must(t, err)
			return store.YankKey("web", v, y.Seq)
		}
		move := func(channel string, seq int, from, to string, s *signature.Signer) string {
			_, err := release.WriteMove(ctx, b, "web", channel, seq, from, to, "", now)
			must(t, err)
			mk := store.MoveKey("web", channel, seq+1)
			if s != nil {
				_, err = release.SignRecord(ctx, b, s, mk, e.read(mk), release.KindMove, nil)
				must(t, err)
			}
			return mk
		}
		// beta points to 1.2.0, by a signed move.
		move("beta", 0, "", "1.2.0", ci)
		// An untrusted key yanks 1.2.0: `~> 1.0` would resolve to 1.1.0.
		rogueYank := yank("1.2.0", true, rogue)

		trusted := e.providerBlock(trustBlockConfig(true, ciPub))
		words := func(ws ...string) *regexp.Regexp {
			for i, w := range ws {
				// Terraform wraps the detail at spaces.
				ws[i] = strings.ReplaceAll(regexp.QuoteMeta(w), " ", `\s+`)
			}
			return regexp.MustCompile(`(?s)` + strings.Join(ws, ".*"))
		}
		refusedYank := func(key string, found ...string) *regexp.Regexp {
			return words(append(append([]string{"Untrusted record", key}, found...), "decides which versions resolve",
				"trust.keys", "immutable_yank of the version")...)
		}
		list := "data \"immutable_releases\" \"l\" {\n  name       = \"web\"\n  constraint = \"~> 1.0\"\n}\n"
		diff := "data \"immutable_release_diff\" \"d\" {\n  name = \"web\"\n  from = \"1.0.0\"\n}\n"
		channel := func(name, extra string) string {
			return "data \"immutable_channel\" \"c\" {\n  release = \"web\"\n  channel = \"" + name + "\"\n" + extra + "}\n"
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: trusted + readRelease("~> 1.0"), ExpectError: refusedYank(rogueYank, rogue.KeyID())},
				{Config: trusted + list, ExpectError: refusedYank(rogueYank, rogue.KeyID())},
				{Config: trusted + diff, ExpectError: refusedYank(rogueYank, rogue.KeyID())},
				{Config: trusted + channel("beta", ""), ExpectError: refusedYank(rogueYank, rogue.KeyID())},
				// Without a policy the yank decides, as before.
				{Config: e.providerBlock() + readRelease("~> 1.0"), Check: resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.1.0")},
				{
					// The same yank, signed by CI: trusted, it decides.
					PreConfig: func() { yank("1.2.0", true, ci) },
					Config:    trusted + readRelease("~> 1.0") + list + diff,
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.1.0"),
						resource.TestCheckResourceAttr("data.immutable_releases.l", "latest", "1.1.0"),
						resource.TestCheckResourceAttr("data.immutable_releases.l", "versions.2.yanked", "true"),
						resource.TestCheckResourceAttr("data.immutable_release_diff.d", "to", "1.1.0"),
					),
				},
				{
					// 1.0.0 yanked by CI, then un-yanked by someone unsigned:
					// a channel does not move to it on that word.
					PreConfig: func() { yank("1.0.0", true, ci) },
					Config:    trusted + "resource \"immutable_channel\" \"s\" {\n  release = \"web\"\n  channel = \"staging\"\n  version = \"1.0.0\"\n}\n",
					ExpectError: func() *regexp.Regexp {
						return regexp.MustCompile(`(?s)Version\s+is\s+yanked`)
					}(),
				},
				{
					PreConfig: func() { yank("1.0.0", false, nil) },
					Config:    trusted + "resource \"immutable_channel\" \"s\" {\n  release = \"web\"\n  channel = \"staging\"\n  version = \"1.0.0\"\n}\n",
					ExpectError: words("Untrusted record", store.YankKey("web", "1.0.0", 2), "no signature", "require_signatures",
						"decides which versions resolve"),
				},
				{
					// An unsigned version below the latest, in the list.
					PreConfig: func() {
						_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: "1.0.1"}, now)
						must(t, err)
					},
					Config:      trusted + "data \"immutable_releases\" \"l\" {\n  name       = \"web\"\n  constraint = \">= 1.0.1\"\n}\n",
					ExpectError: words("Untrusted record", store.VersionKey("web", "1.0.1"), "no signature", "require_signatures", "terraform-provider-immutable sign"),
				},
				{
					// prod: an unsigned first move, then a signed one.
					PreConfig: func() {
						move("prod", 0, "", "1.0.1", nil)
						move("prod", 1, "1.0.1", "1.1.0", ci)
					},
					// Left out of history, not refused: the move in effect
					// does not rest on it.
					Config: trusted + channel("prod", ""),
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("data.immutable_channel.c", "version", "1.1.0"),
						resource.TestCheckResourceAttr("data.immutable_channel.c", "history.#", "1"),
						resource.TestCheckResourceAttr("data.immutable_channel.c", "history.0.move", "2"),
						resource.TestCheckNoResourceAttr("data.immutable_channel.c", "history.0.from"),
					),
				},
				{Config: trusted + channel("prod", "  history_limit = 1\n"), Check: resource.TestCheckResourceAttr("data.immutable_channel.c", "version", "1.1.0")},
			},
		})
	})
}

// TestAccTrust_refresh: under a trust policy, the resources' refresh
// takes values from records they did not write only when the policy
// passes them: importing a release version signed by an untrusted key is
// refused, naming it; a yank entry so signed is imported by its number
// only (no reason, no time); a channel moved by an unsigned
// move is refreshed to that move's number (so the next move is written
// after it) without its values — version, previous_version, moved_at and
// artifacts stay null — and the next apply moves it back, signed, with no
// previous_version (the untrusted move's is not vouched for).
func TestAccTrust_refresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keys := t.TempDir()
		ciKey, ci := writeSigningKey(t, t.TempDir())
		_, rogue := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, keys, "ci.pub", ci)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for v, s := range map[string]*signature.Signer{"1.0.0": ci, "1.1.0": ci, "2.0.0": rogue} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v}, now)
			must(t, err)
			_, err = release.Countersign(ctx, b, s, "web", v)
			must(t, err)
		}
		y, err := release.SetYank(ctx, b, "web", "1.1.0", true, "broken", release.AnySeq, now, release.SignWith(rogue))
		must(t, err)
		trusted := e.providerBlock(fmt.Sprintf("signing_key = %q", ciKey), trustBlockConfig(true, ciPub))
		rel := "resource \"immutable_release\" \"web\" {\n  name      = \"web\"\n  artifacts = {}\n}\n"
		yank := "resource \"immutable_yank\" \"y\" {\n  name    = \"web\"\n  version = \"1.1.0\"\n  reason  = \"broken\"\n}\n"
		channel := "resource \"immutable_channel\" \"prod\" {\n  release = \"web\"\n  channel = \"prod\"\n  version = \"1.0.0\"\n}\n"
		// An import step's own configuration is not given the provider's
		// source as a plan step's is: OpenTofu would look for it in its
		// registry.
		source := "terraform {\n  required_providers {\n    immutable = { source = \"registry.terraform.io/hashicorp/immutable\" }\n  }\n}\n"
		refused := func(key, found string) *regexp.Regexp {
			return regexp.MustCompile(`(?s)Untrusted record.*` + regexp.QuoteMeta(key) + `.*` + regexp.QuoteMeta(found) + `.*trust\.keys`)
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: trusted + channel, Check: resource.TestCheckResourceAttr("immutable_channel.prod", "move", "1")},
				{
					Config: source + trusted + channel + rel, ResourceName: "immutable_release.web", ImportState: true, ImportStateId: "web@2.0.0",
					ExpectError: refused(store.VersionKey("web", "2.0.0"), rogue.KeyID()),
				},
				{
					// Only its position: the next apply writes a signed entry after it.
					Config: source + trusted + channel + yank, ResourceName: "immutable_yank.y", ImportState: true, ImportStateId: "web@1.1.0",
					ImportStatePersist: true,
					ImportStateCheck: func(s []*terraform.InstanceState) error {
						for _, is := range s {
							if is.ID == "web@1.1.0" && is.Attributes["entry"] == strconv.Itoa(y.Seq) && is.Attributes["reason"] == "" && is.Attributes["yanked_at"] == "" {
								return nil
							}
						}
						return fmt.Errorf("imported %v; want web@1.1.0 with entry %d and no reason or time", s, y.Seq)
					},
				},
				{
					// Moved by someone, unsigned, to 1.1.0.
					PreConfig: func() {
						_, err := release.WriteMove(ctx, b, "web", "prod", 1, "1.0.0", "1.1.0", "", now)
						must(t, err)
					},
					RefreshState: true, ExpectNonEmptyPlan: true,
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("immutable_channel.prod", "move", "2"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "version"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "previous_version"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "moved_at"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "artifacts.%"),
					),
				},
				{
					// The yank imported by its position is written again
					// after it, signed (the same reason), and decides; the
					// untrusted entry stays unsigned.
					Config: trusted + channel + yank,
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("immutable_yank.y", "reason", "broken"),
						resource.TestCheckResourceAttr("immutable_yank.y", "entry", strconv.Itoa(y.Seq+1)),
						resource.TestCheckResourceAttrSet("immutable_yank.y", "yanked_at"),
						resource.TestCheckResourceAttr("immutable_channel.prod", "move", "3"),
						resource.TestCheckResourceAttr("immutable_channel.prod", "version", "1.0.0"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "previous_version"),
					),
				},
				{
					Config: trusted + channel + yank + readRelease("~> 1.0"),
					Check:  resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0"),
				},
			},
		})
	})
}

// TestAccTrust_repair: under a trust policy, a channel move or yank entry
// the policy refuses, written over a workspace's own, makes that
// workspace's plan an update that writes a signed one after it — even
// where the untrusted one says what the configuration says — so CI sees
// the change and the apply repairs every reader: an unsigned move to a
// version that does not exist (refresh does not read it), an unsigned
// move to the configured version, an unsigned yank entry with the
// configured reason, and the version's record replaced and signed by
// another trusted key (the channel's signed move approved the old one).
// After each apply the data sources read again, and an untrusted older
// move is left out of data.immutable_channel's history rather than
// refused.
func TestAccTrust_repair(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keys := t.TempDir()
		ciKey, ci := writeSigningKey(t, t.TempDir())
		_, ops := writeSigningKey(t, t.TempDir())
		ciPub, opsPub := writePublicKey(t, keys, "ci.pub", ci), writePublicKey(t, keys, "ops.pub", ops)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		publish := func(v string) {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v}, now)
			must(t, err)
			_, err = release.Countersign(ctx, b, ci, "web", v)
			must(t, err)
		}
		publish("1.0.0")
		publish("1.1.0")
		cfgAt := func(v string) string {
			return e.providerBlock(fmt.Sprintf("signing_key = %q", ciKey), trustBlockConfig(true, ciPub, opsPub)) +
				"resource \"immutable_channel\" \"prod\" {\n  release = \"web\"\n  channel = \"prod\"\n  version = \"" + v + "\"\n}\n" +
				"resource \"immutable_yank\" \"y\" {\n  name    = \"web\"\n  version = \"1.1.0\"\n  reason  = \"broken\"\n}\n"
		}
		cfg := cfgAt("1.0.0")
		reads := "data \"immutable_channel\" \"c\" {\n  release = \"web\"\n  channel = \"prod\"\n}\n" + readRelease("~> 1.0")
		forge := func(seq int, from, to string) func() {
			return func() {
				_, err := release.WriteMove(ctx, b, "web", "prod", seq, from, to, "", now)
				must(t, err)
			}
		}
		update := func(addr string) resource.ConfigPlanChecks {
			return resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}}
		}
		readsAgain := func(move int) resource.TestCheckFunc {
			return resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.immutable_channel.c", "version", "1.0.0"),
				resource.TestCheckResourceAttr("data.immutable_channel.c", "history.#", "2"),
				resource.TestCheckResourceAttr("data.immutable_channel.c", "history.0.move", "1"),
				resource.TestCheckResourceAttr("data.immutable_channel.c", "history.1.move", strconv.Itoa(move)),
				resource.TestCheckNoResourceAttr("data.immutable_channel.c", "history.1.from"),
				resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0"),
			)
		}
		var forgedYank int
		var moveHook testHook
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6With(hooks{beforeMove: moveHook.run}),
			Steps: []resource.TestStep{
				{Config: cfg, Check: resource.TestCheckResourceAttr("immutable_channel.prod", "move", "1")},
				{
					// An unsigned move to a version that does not exist:
					// refresh takes its number only, and the apply moves back.
					PreConfig: forge(1, "1.0.0", "9.9.9"), Config: cfg, ConfigPlanChecks: update("immutable_channel.prod"),
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("immutable_channel.prod", "move", "3"),
						resource.TestCheckResourceAttr("immutable_channel.prod", "version", "1.0.0"),
						resource.TestCheckNoResourceAttr("immutable_channel.prod", "previous_version"),
					),
				},
				// Move 2 stays unsigned: left out of history, the read passes.
				{Config: cfg + reads, Check: readsAgain(3)},
				{
					// An unsigned move to the configured version itself.
					PreConfig: forge(3, "1.0.0", "1.0.0"), Config: cfg, ConfigPlanChecks: update("immutable_channel.prod"),
					Check: resource.TestCheckResourceAttr("immutable_channel.prod", "move", "5"),
				},
				{Config: cfg + "data \"immutable_channel\" \"c\" {\n  release = \"web\"\n  channel = \"prod\"\n  history_limit = 2\n}\n",
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr("data.immutable_channel.c", "history.#", "1"),
						resource.TestCheckResourceAttr("data.immutable_channel.c", "history.0.move", "5"),
					)},
				{
					// An unsigned yank entry with the configured reason.
					PreConfig: func() {
						y, err := release.YankState(ctx, b, "web", "1.1.0")
						must(t, err)
						y, err = release.SetYank(ctx, b, "web", "1.1.0", true, "broken", y.Seq, now)
						must(t, err)
						forgedYank = y.Seq
					},
					Config: cfg, ConfigPlanChecks: update("immutable_yank.y"),
					Check: func(s *terraform.State) error {
						return resource.TestCheckResourceAttr("immutable_yank.y", "entry", strconv.Itoa(forgedYank+1))(s)
					},
				},
				{Config: cfg + readRelease("~> 1.0"), Check: resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0")},
				{
					// 1.0.0's record replaced, signed by ops, also trusted:
					// move 5 approved the old one.
					PreConfig: func() {
						e.deleteKeys(store.VersionKey("web", "1.0.0"))
						_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: "1.0.0", Metadata: map[string]string{"by": "ops"}}, now)
						must(t, err)
						_, err = release.Countersign(ctx, b, ops, "web", "1.0.0")
						must(t, err)
					},
					Config: cfg, ConfigPlanChecks: update("immutable_channel.prod"),
					Check: resource.TestCheckResourceAttr("immutable_channel.prod", "move", "6"),
				},
				{Config: cfg + reads, Check: resource.TestCheckResourceAttr("data.immutable_channel.c", "metadata.by", "ops")},
				{
					// Moved, unsigned, between plan and apply: the apply says
					// so, none of that move's values, and writes nothing.
					PreConfig: func() {
						publish("1.2.0")
						t.Cleanup(moveHook.set(func(context.Context) error {
							moveHook.set(nil)
							_, err := release.WriteMove(ctx, b, "web", "prod", 6, "1.0.0", "1.0.0\u202e\u001b[2J\nevil", "", now)
							return err
						}))
					},
					Config:      cfgAt("1.2.0"),
					ExpectError: regexp.MustCompile(`Channel moved by an untrusted writer(?s:.)*move 7,(?s:.)*refuses`),
				},
				{
					Config: cfg, ConfigPlanChecks: update("immutable_channel.prod"),
					Check: resource.TestCheckResourceAttr("immutable_channel.prod", "move", "8"),
				},
			},
		})
	})
}
