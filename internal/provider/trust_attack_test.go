package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
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
			signature.NewProvenance(actioncache.BuildType, actioncache.BuilderID, map[string]any{}), nil)
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
