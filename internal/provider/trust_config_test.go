package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// writePublicKey writes s's public key (PEM) to dir/name and returns its path.
func writePublicKey(t *testing.T, dir, name string, s *signature.Signer) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, s.Public().PEM(), 0o600))
	return p
}

// trustBlockConfig is a provider trust block trusting the public key
// files keys.
func trustBlockConfig(require bool, keys ...string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = fmt.Sprintf("file(%q)", k)
	}
	return fmt.Sprintf("trust {\n    keys = [%s]\n    require_signatures = %v\n  }", strings.Join(quoted, ", "), require)
}

// readRelease is a data source reading one version of web.
func readRelease(version string) string {
	return fmt.Sprintf("data \"immutable_release\" \"r\" {\n  name    = \"web\"\n  version = %q\n}\n", version)
}

// TestAccTrust: under a trust policy, data sources read a version signed
// by a trusted key and refuse at plan, naming the record and the key IDs,
// one whose signature was tampered with, one signed by an untrusted key,
// one swapped for another record (the signature moved beside it), one
// carrying a signature copied from another version, an unsigned one under
// require_signatures, one signed by a key removed from trust (revoked),
// a channel whose move is signed by an untrusted key, a channel move
// planned to an untrusted version and a list whose latest is one. Without the
// trust block an unsigned store reads as before; an invalid key is an
// error naming trust.keys[i].
func TestAccTrust(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keys := t.TempDir()
		_, ci := writeSigningKey(t, t.TempDir())
		_, rogue := writeSigningKey(t, t.TempDir())
		_, old := writeSigningKey(t, t.TempDir())
		ciPub, oldPub := writePublicKey(t, keys, "ci.pub", ci), writePublicKey(t, keys, "old.pub", old)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

		publish := func(version string, metadata map[string]string) string {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: version, Metadata: metadata}, now)
			must(t, err)
			return store.VersionKey("web", version)
		}
		sign := func(s *signature.Signer, key, kind string) *signature.Envelope {
			env, err := release.SignRecord(ctx, b, s, key, e.read(key), kind, nil)
			must(t, err)
			return env
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
		ids := func(ss ...*signature.Signer) string {
			out := make([]string, len(ss))
			for i, s := range ss {
				out[i] = s.KeyID()
			}
			return strings.Join(out, ", ")
		}

		good := publish("1.0.0", nil)
		sign(ci, good, release.KindRelease)
		sign(rogue, publish("2.0.0", nil), release.KindRelease)

		// A signature whose bytes were altered.
		tampered := publish("3.0.0", nil)
		env := sign(ci, tampered, release.KindRelease)
		sig := []byte(env.Signatures[0].Sig)
		// Another base64 letter (a flipped bit may make one that is not
		// base64, such as 'A'^1 = '@': a signature that does not decode).
		if sig[3] == 'A' {
			sig[3] = 'B'
		} else {
			sig[3] = 'A'
		}
		env.Signatures[0].Sig = string(sig)
		put(store.SignatureKey(digest.Bytes(e.read(tampered)), ci.KeyID()), env)

		publish("4.0.0", nil) // unsigned

		// 1.0.0's signature copied beside 5.0.0.
		copied := publish("5.0.0", nil)
		put(store.SignatureKey(digest.Bytes(e.read(copied)), ci.KeyID()), sign(ci, good, release.KindRelease))

		// 6.0.0 swapped for another record of the same version (valid in
		// itself), its signature moved beside it.
		swapped := publish("6.0.0", nil)
		swapEnv := sign(ci, swapped, release.KindRelease)
		forged := &release.Record{Spec: release.Spec, Name: "web", Version: "6.0.0", Artifacts: map[string]string{},
			Metadata: map[string]string{"evil": "yes"}, PublishedAt: now.Format(time.RFC3339)}
		forged.Digest = forged.Content().Digest().String()
		forgedBody, err := json.MarshalIndent(forged, "", "  ")
		must(t, err)
		forgedBody = append(forgedBody, '\n')
		e.tamper(swapped, forgedBody)
		put(store.SignatureKey(digest.Bytes(forgedBody), ci.KeyID()), swapEnv)

		sign(old, publish("7.0.0", nil), release.KindRelease)

		// A channel whose move an untrusted key signed.
		_, err = release.WriteMove(ctx, b, "web", "prod", 0, "", "1.0.0", "", now)
		must(t, err)
		sign(rogue, store.MoveKey("web", "prod", 1), release.KindMove)
		channel := "data \"immutable_channel\" \"c\" {\n  release = \"web\"\n  channel = \"prod\"\n}\n"

		trusted := trustBlockConfig(false, ciPub, oldPub)
		refused := func(key string, extra string) *regexp.Regexp {
			// Terraform wraps the detail at spaces.
			return regexp.MustCompile(`(?s)Untrusted record.*` + regexp.QuoteMeta(key) + `.*` + strings.ReplaceAll(extra, " ", `\s+`))
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				// No policy: the unsigned store reads as before.
				{Config: e.providerBlock() + readRelease("4.0.0")},
				{
					Config:      e.providerBlock("trust {\n    keys = [\"not a key\"]\n  }") + readRelease("1.0.0"),
					ExpectError: regexp.MustCompile(`(?s)Invalid trusted key.*trust\.keys\[0\].*no PEM block`),
				},
				{
					Config: e.providerBlock(trusted) + readRelease("1.0.0") +
						strings.Replace(readRelease("7.0.0"), `"r"`, `"r7"`, 1) + strings.Replace(readRelease("4.0.0"), `"r"`, `"r4"`, 1),
					Check: resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0"),
				},
				{Config: e.providerBlock(trusted) + readRelease("2.0.0"), ExpectError: refused(store.VersionKey("web", "2.0.0"), regexp.QuoteMeta(rogue.KeyID()))},
				{Config: e.providerBlock(trusted) + readRelease("3.0.0"), ExpectError: refused(tampered, regexp.QuoteMeta(ci.KeyID())+`.*do not verify`)},
				{Config: e.providerBlock(trusted) + readRelease("5.0.0"), ExpectError: refused(copied, `is not about`)},
				{Config: e.providerBlock(trusted) + readRelease("6.0.0"), ExpectError: refused(swapped, `is not about`)},
				{Config: e.providerBlock(trustBlockConfig(true, ciPub)) + readRelease("4.0.0"), ExpectError: refused(store.VersionKey("web", "4.0.0"), `no signature.*require_signatures`)},
				// A policy requires signatures unless told not to: a bucket writer
				// must not get past it by not signing.
				{Config: e.providerBlock(fmt.Sprintf("trust {\n    keys = [file(%q)]\n  }", ciPub)) + readRelease("4.0.0"), ExpectError: refused(store.VersionKey("web", "4.0.0"), `no signature.*require_signatures`)},
				// Revoked: old's key removed from trust.
				{Config: e.providerBlock(trustBlockConfig(false, ciPub)) + readRelease("7.0.0"), ExpectError: refused(store.VersionKey("web", "7.0.0"), regexp.QuoteMeta(ids(old)))},
				{Config: e.providerBlock(trusted) + channel, ExpectError: refused(store.MoveKey("web", "prod", 1), regexp.QuoteMeta(rogue.KeyID()))},
				// A channel move planned to an untrusted version, and the
				// latest of a list that is one.
				{
					Config:      e.providerBlock(trusted) + "resource \"immutable_channel\" \"s\" {\n  release = \"web\"\n  channel = \"staging\"\n  version = \"2.0.0\"\n}\n",
					ExpectError: refused(store.VersionKey("web", "2.0.0"), regexp.QuoteMeta(rogue.KeyID())),
				},
				{
					Config:      e.providerBlock(trusted) + "data \"immutable_releases\" \"l\" {\n  name       = \"web\"\n  constraint = \"~> 2.0\"\n}\n",
					ExpectError: refused(store.VersionKey("web", "2.0.0"), regexp.QuoteMeta(rogue.KeyID())),
				},
				// The same channel without a policy reads.
				{Config: e.providerBlock() + channel, Check: resource.TestCheckResourceAttr("data.immutable_channel.c", "version", "1.0.0")},
			},
		})
	})
}

// A policy that lets unsigned records pass says so at every plan, on the
// attribute; the default (required) says nothing.
func TestTrustWarnsWhenSignaturesAreNotRequired(t *testing.T) {
	for _, tc := range []struct {
		require types.Bool
		warn    bool
	}{{types.BoolNull(), false}, {types.BoolValue(true), false}, {types.BoolValue(false), true}} {
		trust, diags := loadTrust(&trustModel{RequireSignatures: tc.require, Channels: types.MapNull(types.ListType{ElemType: types.StringType})})
		if trust == nil || diags.HasError() {
			t.Fatalf("require_signatures = %s: %v", tc.require, diags)
		}
		warned := len(diags.Warnings()) == 1 && strings.Contains(diags.Warnings()[0].Detail(), "catches mistakes, not attackers")
		if warned != tc.warn {
			t.Errorf("require_signatures = %s: warnings %v, want a warning: %v", tc.require, diags.Warnings(), tc.warn)
		}
	}
}

// An empty trust.keys, with no channel keys, trusts no signature: every
// read is refused, so the configuration says why once, on trust.keys.
func TestTrustWarnsWhenNoKeys(t *testing.T) {
	_, s := writeSigningKey(t, t.TempDir())
	pub := string(s.Public().PEM())
	noChannels := types.MapNull(types.ListType{ElemType: types.StringType})
	for _, tc := range []struct {
		name string
		keys []types.String
		warn bool
	}{{"empty", []types.String{}, true}, {"null", nil, true}, {"one key", []types.String{types.StringValue(pub)}, false}} {
		_, diags := loadTrust(&trustModel{RequireSignatures: types.BoolNull(), Keys: tc.keys, Channels: noChannels})
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
		}
		warned := false
		for _, w := range diags.Warnings() {
			warned = warned || strings.Contains(w.Detail(), "trust.keys is empty") && strings.Contains(w.Detail(), "no signature can be trusted")
		}
		if warned != tc.warn {
			t.Errorf("%s: warnings %v, want the empty-keys warning: %v", tc.name, diags.Warnings(), tc.warn)
		}
	}
}
