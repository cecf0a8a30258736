package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccTrust_poisonedBuildRecord: a build record written by hand into a
// shared store for a step's key, naming another stored output (right key,
// wrong output), is no cache hit for the next workspace under a trust
// policy: its plan refuses it, naming the record and the key IDs found —
// signed by an untrusted key, carrying the trusted key's signature of the
// original record, or unsigned under require_signatures. The genuine
// record, signed by the trusted key, is a hit.
func TestAccTrust_poisonedBuildRecord(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keyFile, ci := writeSigningKey(t, t.TempDir())
		_, rogue := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
		step := `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo good > out"]
  tools   = ["sh"]
  output  = "out"
}
`
		trusted, required := e.providerBlock(trustBlockConfig(false, ciPub)), e.providerBlock(trustBlockConfig(true, ciPub))
		good := digest.Bytes([]byte("good\n"))
		var key digest.Sum
		// CI builds and signs.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: e.providerBlock(fmt.Sprintf("signing_key = %q", keyFile), trustBlockConfig(true, ciPub)) + step,
				Check: func(s *terraform.State) (err error) {
					key, err = digest.Parse(s.RootModule().Resources["immutable_build.b"].Primary.Attributes["key"])
					return err
				},
			}},
		})
		// The next workspace (a new working directory, the same store)
		// hits the signed record.
		hit := func(cfg string, want digest.Sum) {
			t.Helper()
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config: cfg + step,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("cache_hit"), knownvalue.Bool(true)),
						statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(want.String())),
					},
				}},
			})
		}
		hit(required, good)

		rk := store.ActionKey(key)
		original := e.read(rk)
		rec, err := actioncache.ParseRecord(original, key, rk)
		must(t, err)
		envs, err := signature.ReadSignatures(ctx, b, rk, digest.Bytes(original))
		must(t, err)
		if len(envs) != 1 {
			t.Fatalf("%s: %d signatures, want 1", rk, len(envs))
		}

		// The poison: another stored file recorded for the step's key.
		evil := []byte("evil\n")
		_, err = e.backend().PutBlob(ctx, digest.Bytes(evil), bytes.NewReader(evil))
		must(t, err)
		poison := func(duration int64) []byte {
			p := *rec
			p.Output, p.Size, p.Duration = digest.Bytes(evil), int64(len(evil)), duration
			body := p.Encode()
			e.tamper(rk, body)
			return body
		}
		put := func(key string, env *signature.Envelope) {
			body, err := json.Marshal(env)
			must(t, err)
			if err := b.Create(ctx, key, bytes.NewReader(body)); errors.Is(err, store.ErrExists) {
				e.tamper(key, body)
			} else {
				must(t, err)
			}
		}
		refused := func(cfg, extra string) {
			t.Helper()
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config:      cfg + step,
					ExpectError: regexp.MustCompile(`(?s)Untrusted record.*Build\s+cache\s+hit\s+refused.*` + regexp.QuoteMeta(rk) + `.*` + extra + `.*trust\.keys`),
				}},
			})
		}

		// Signed by an untrusted key.
		signed := poison(1)
		_, err = signature.SignRecord(ctx, b, rogue, rk, signed, signature.ProvenancePredicateType,
			signature.NewProvenance(actioncache.BuildType, actioncache.DefaultBuilderID, map[string]any{}), nil)
		must(t, err)
		refused(trusted, regexp.QuoteMeta(rogue.KeyID()))

		// The trusted key's signature of the original record, copied beside
		// the poisoned one.
		put(store.SignatureKey(digest.Bytes(signed), ci.KeyID()), envs[0])
		refused(trusted, regexp.QuoteMeta(ci.KeyID())+`.*do\s+not\s+verify\s+or\s+name\s+another\s+record.*is\s+not\s+about`)

		// Unsigned, under require_signatures.
		poison(2)
		refused(required, `no\s+signature.*require_signatures`)

		// The genuine record back: a hit again.
		e.tamper(rk, original)
		hit(required, good)
	})
}

// TestAccTrust_replayedMove: an older signed channel move's bytes copied
// to the next move's key, its signature beside it (the same bytes: the
// same signature folder), do not move the channel back under a trust
// policy: data.immutable_channel refuses it at plan.
func TestAccTrust_replayedMove(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		_, ci := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, v := range []string{"1.0.0", "2.0.0"} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v}, now)
			must(t, err)
			_, err = release.SignRecord(ctx, b, ci, store.VersionKey("web", v), e.read(store.VersionKey("web", v)), release.KindRelease, nil)
			must(t, err)
		}
		for seq, move := range [][2]string{{"", "1.0.0"}, {"1.0.0", "2.0.0"}} {
			_, err := release.WriteMove(ctx, b, "web", "prod", seq, move[0], move[1], "", now)
			must(t, err)
			mk := store.MoveKey("web", "prod", seq+1)
			_, err = release.SignRecord(ctx, b, ci, mk, e.read(mk), release.KindMove, nil)
			must(t, err)
		}
		channel := "data \"immutable_channel\" \"c\" {\n  release = \"web\"\n  channel = \"prod\"\n}\n"
		trusted := e.providerBlock(trustBlockConfig(true, ciPub))
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: trusted + channel,
				Check:  resource.TestCheckResourceAttr("data.immutable_channel.c", "version", "2.0.0"),
			}},
		})
		refused := func(want string) {
			t.Helper()
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps:                    []resource.TestStep{{Config: trusted + channel, ExpectError: regexp.MustCompile(`(?s)` + want)}},
			})
		}
		// The replay: a well-formed move 3 back to 1.0.0, with move 1's
		// signature copied beside it: its subject names move 1.
		replayed, first := store.MoveKey("web", "prod", 3), store.MoveKey("web", "prod", 1)
		_, err := release.WriteMove(ctx, b, "web", "prod", 2, "2.0.0", "1.0.0", "", now)
		must(t, err)
		envs, err := signature.ReadSignatures(ctx, b, first, digest.Bytes(e.read(first)))
		must(t, err)
		body, err := json.Marshal(envs[0])
		must(t, err)
		must(t, b.Create(ctx, store.SignatureKey(digest.Bytes(e.read(replayed)), ci.KeyID()), bytes.NewReader(body)))
		refused(`Untrusted record.*` + regexp.QuoteMeta(replayed) + `.*` + regexp.QuoteMeta(ci.KeyID()) + `.*is\s+not\s+about.*but\s+about\s+` + regexp.QuoteMeta(first))
		// Move 1's bytes copied whole to move 4 (its signature, in the
		// folder of those bytes, comes along) are caught by the move's own
		// form: it says it is move 1.
		copied := store.MoveKey("web", "prod", 4)
		must(t, b.Create(ctx, copied, bytes.NewReader(e.read(first))))
		refused(`Channel entry altered.*` + regexp.QuoteMeta(copied) + `.*it\s+is\s+move\s+1`)
	})
}
