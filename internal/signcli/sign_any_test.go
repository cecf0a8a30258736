package signcli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// signatureKeys lists every signature in the store.
func signatureKeys(t *testing.T, b store.Backend) []string {
	t.Helper()
	keys, err := b.List(ctx, store.FamilySignature.Dir())
	must(t, err)
	return keys
}

// moveSigned writes move seq of web/prod to version and signs it with k
// as MoveTo does: the record first, then the version's record.
func moveSigned(t *testing.T, b store.Backend, seq int, from, to string, k key) *release.Move {
	t.Helper()
	m, err := release.WriteMove(ctx, b, "web", "prod", seq-1, from, to, "ship "+to, time.Now())
	must(t, err)
	vk := release.VersionKey("web", to)
	_, err = release.SignRecord(ctx, b, k.s, store.MoveKey("web", "prod", m.Seq), m.Stored(), release.KindMove,
		[]signature.Subject{{Name: vk, Digest: digest.Bytes(stored(t, b, vk))}})
	must(t, err)
	return m
}

// buildSigned writes the action record of a step whose output is the
// file holding out (the step salted with it), signed by k with the step's provenance, as a build
// does; it returns the record.
func buildSigned(t *testing.T, b store.Backend, out []byte, k *key) *actioncache.Record {
	t.Helper()
	spec := &actioncache.Spec{Command: []string{"sh", "-c", "echo built > out"}, Tools: map[string]digest.Sum{"sh": digest.Bytes([]byte("sh"))},
		Output: "out", Platform: "linux/amd64", Salt: string(out)}
	r := &actioncache.Record{Key: spec.Key(), Output: digest.Bytes(out), Type: actioncache.TypeFile, Size: int64(len(out)), Files: 1,
		Log: digest.Bytes([]byte("built\n")), Duration: 12}
	must(t, b.Create(ctx, store.ActionKey(r.Key), strings.NewReader(string(r.Encode()))))
	if k != nil {
		_, err := actioncache.SignRecord(ctx, store.New(b), k.s, spec, r, "https://ci.example/runner")
		must(t, err)
	}
	return r
}

// TestSignEveryKindAfterRotation: after a key rotation (ci → rotated),
// `sign` countersigns each kind of record the old key signed — a channel
// move, a yank entry, a build action record — and verify then passes
// with only the new key. Per kind: a record without a signature by the
// --trusted-key is refused (exit 1, nothing written), a wrong --digest is
// refused, --trusted-key succeeds, printing what is approved.
func TestSignEveryKindAfterRotation(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci, rotated, rogue := newKey(t, dir, "ci", true), newKey(t, dir, "rotated", false), newKey(t, dir, "rogue", false)
		publish(t, b, "1.0.0", ci, rotated) // the version itself, countersigned already
		publish(t, b, "1.1.0", ci, rotated)
		moveSigned(t, b, 1, "", "1.0.0", ci)
		moveSigned(t, b, 2, "1.0.0", "1.1.0", ci)
		_, err := release.SetYank(ctx, b, "web", "1.0.0", true, "CVE-1", 0, time.Now(), release.SignWith(ci.s))
		must(t, err)
		act := buildSigned(t, b, []byte("built\n"), &ci)
		unsignedAct := buildSigned(t, b, []byte("other\n"), nil)
		wrong := digest.Bytes([]byte("not the record")).String()

		sign := func(addr []string, args ...string) (int, string, string) {
			return run("sign", append(append(append(addr, "--key", rotated.priv), args...), flags...)...)
		}
		verify := func(addr []string, k key) (int, string, string) {
			return run("verify", append(append(addr, "--trusted-key", k.pub), flags...)...)
		}
		for _, c := range []struct {
			name    string
			addr    []string
			key     string
			shows   []string // what sign prints of the record
			refused []string // an address of the same kind that CI did not sign
		}{
			{"move", []string{"--channel", "web/prod"}, store.MoveKey("web", "prod", 2),
				[]string{"approving move 2 of web/prod", "move       1.0.0 → 1.1.0", "seq        2", "reason     ship 1.1.0",
					"to record  " + release.VersionKey("web", "1.1.0"), "statement (signed again, byte for byte",
					"subject    " + release.VersionKey("web", "1.1.0") + " sha256:"},
				nil},
			{"move by key", []string{"--record", store.MoveKey("web", "prod", 1)}, store.MoveKey("web", "prod", 1),
				[]string{"approving move 1 of web/prod", "(none: the channel's first move) → 1.0.0"}, nil},
			{"yank", []string{"--yank", "web@1.0.0"}, store.YankKey("web", "1.0.0", 1),
				[]string{"approving yank entry 1 of web@1.0.0", "state      yanked (no longer resolves)", "reason     CVE-1"}, nil},
			{"action", []string{"--action", act.Key.String()}, store.ActionKey(act.Key),
				[]string{"approving the build record " + store.ActionKey(act.Key), "output     " + act.Output.String() + " (file, 6 bytes, 1 files)",
					"provenance (signed again, byte for byte", "builder    https://ci.example/runner", `command    "sh" "-c" "echo built > out"`,
					"subject    out " + act.Output.String()},
				[]string{"--action", unsignedAct.Key.String()}},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := signatureKeys(t, b)
				// Only the old key signed it: the new key alone refuses it.
				if code, stdout, stderr := verify(c.addr, rotated); code != 1 || !strings.Contains(stderr, "is not signed by a trusted key") ||
					!strings.Contains(stderr, "terraform-provider-immutable sign --store STORE") {
					t.Fatalf("verify before: exit %d\n%s%s", code, stdout, stderr)
				}
				// Not signed by the --trusted-key: refused.
				code, stdout, stderr := sign(c.addr, "--trusted-key", rogue.pub)
				if code != 1 || !strings.Contains(stderr, "refused, nothing signed") || !strings.Contains(stderr, "carries no valid signature by a key given with --trusted-key") {
					t.Fatalf("untrusted: exit %d\n%s%s", code, stdout, stderr)
				}
				if c.refused != nil {
					code, stdout, stderr = sign(c.refused, "--trusted-key", ci.pub)
					if code != 1 || !strings.Contains(stderr, "it has no signature") {
						t.Fatalf("unsigned: exit %d\n%s%s", code, stdout, stderr)
					}
				}
				// The reviewed digest is another record's: refused.
				code, stdout, stderr = sign(c.addr, "--trusted-key", ci.pub, "--digest", wrong)
				if code != 1 || !strings.Contains(stderr, "refused, nothing signed") || !strings.Contains(stderr, "not the "+wrong+" you reviewed") {
					t.Fatalf("wrong digest: exit %d\n%s%s", code, stdout, stderr)
				}
				if after := signatureKeys(t, b); !slices.Equal(after, before) {
					t.Fatalf("a refused sign wrote %v", after)
				}
				// Checked against CI's key: signed.
				code, stdout, stderr = sign(c.addr, "--trusted-key", ci.pub)
				if code != 0 || !strings.Contains(stdout, "signed by key ID "+rotated.id) || !strings.Contains(stdout, "record     "+c.key) {
					t.Fatalf("sign: exit %d\n%s%s", code, stdout, stderr)
				}
				for _, want := range c.shows {
					if !strings.Contains(stdout, want) {
						t.Errorf("sign printed no %q:\n%s", want, stdout)
					}
				}
				if code, stdout, stderr := verify(c.addr, rotated); code != 0 || strings.Contains(stdout, "INVALID") {
					t.Fatalf("verify with the new key only: exit %d\n%s%s", code, stdout, stderr)
				}
				// The countersignature says what CI's does: the same statement.
				raw := stored(t, b, c.key)
				envs, err := release.ReadSignatures(ctx, b, c.key, digest.Bytes(raw))
				must(t, err)
				var payloads []string
				for _, env := range envs {
					payloads = append(payloads, env.Payload)
				}
				if len(payloads) != 2 || payloads[0] != payloads[1] {
					t.Fatalf("%s: %d signatures, payloads differ or missing: %v", c.key, len(payloads), payloads)
				}
				// The policy trusts it now with the new key alone.
				must(t, release.NewTrust([]*signature.Verifier{rotated.s.Public()}, true).Check(ctx, b, c.key, digest.Bytes(raw)))
			})
		}
	})
}

// TestSignMoveByDigest: without a trusted signature, a move is approved
// by its reviewed sha256; the countersignature then names the record of
// the version it moves to, as MoveTo's does.
func TestSignMoveByDigest(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		rotated := newKey(t, dir, "rotated", false)
		publish(t, b, "1.0.0", rotated)
		m, err := release.WriteMove(ctx, b, "web", "prod", 0, "", "1.0.0", "first", time.Now())
		must(t, err)
		sum := digest.Bytes(m.Stored())
		code, stdout, stderr := run("sign", append([]string{"--move", "web/prod@1", "--key", rotated.priv, "--digest", sum.String()}, flags...)...)
		if code != 0 || !strings.Contains(stdout, "sha256     "+sum.String()) {
			t.Fatalf("sign --digest: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = run("verify", append([]string{"--channel", "web/prod", "--trusted-key", rotated.pub}, flags...)...)
		if code != 0 {
			t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
		}
		envs, err := release.ReadSignatures(ctx, b, store.MoveKey("web", "prod", 1), sum)
		must(t, err)
		st, err := signature.VerifyRecord(envs[0], []*signature.Verifier{rotated.s.Public()}, store.MoveKey("web", "prod", 1), sum, release.RecordPredicateType)
		must(t, err)
		vk := release.VersionKey("web", "1.0.0")
		if subs := st.Subjects(); len(subs) != 2 || subs[1].Name != vk || subs[1].Digest != digest.Bytes(stored(t, b, vk)) {
			t.Fatalf("subjects %v, want the move and %s", subs, vk)
		}
	})
}

// TestVerifyMoveChecksItsRecord: verify --channel refuses a channel
// whose version's record was replaced after the move was signed, even
// when the new record carries a trusted signature of its own.
func TestVerifyMoveChecksItsRecord(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci := newKey(t, dir, "ci", false)
		publish(t, b, "1.0.0", ci)
		moveSigned(t, b, 1, "", "1.0.0", ci)
		args := append([]string{"--channel", "web/prod", "--trusted-key", ci.pub}, flags...)
		if code, stdout, stderr := run("verify", args...); code != 0 {
			t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
		}
		// The record replaced by a writer holding the trusted key.
		d, ok := b.(store.Deleter)
		if !ok {
			t.Fatalf("%T cannot delete", b)
		}
		must(t, d.Delete(ctx, release.VersionKey("web", "1.0.0")))
		r := &release.Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"app.zip": digest.Bytes([]byte("swapped")).String()}}
		_, err := release.WriteRecord(ctx, b, r, time.Now())
		must(t, err)
		_, err = release.Countersign(ctx, b, ci.s, "web", "1.0.0")
		must(t, err)
		code, stdout, stderr := run("verify", args...)
		if code != 1 || !strings.Contains(stderr, "it was replaced after the move was approved") {
			t.Fatalf("replaced record: exit %d\n%s%s", code, stdout, stderr)
		}
	})
}

// TestEnvelopeOfEveryKind: envelope prints the envelopes of a move, a
// yank entry and a build record, and --record-out writes the bytes their
// first subject names.
func TestEnvelopeOfEveryKind(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci := newKey(t, dir, "ci", false)
		publish(t, b, "1.0.0", ci)
		moveSigned(t, b, 1, "", "1.0.0", ci)
		_, err := release.SetYank(ctx, b, "web", "1.0.0", true, "bad", 0, time.Now(), release.SignWith(ci.s))
		must(t, err)
		act := buildSigned(t, b, []byte("built\n"), &ci)
		for i, c := range []struct {
			addr []string
			key  string
		}{
			{[]string{"--channel", "web/prod"}, store.MoveKey("web", "prod", 1)},
			{[]string{"--yank", "web@1.0.0#1"}, store.YankKey("web", "1.0.0", 1)},
			{[]string{"--action", act.Key.String()}, store.ActionKey(act.Key)},
		} {
			out := filepath.Join(dir, "record"+string(rune('a'+i)))
			code, stdout, stderr := run("envelope", append(append(c.addr, "--record-out", out), flags...)...)
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s%s", c.addr, code, stdout, stderr)
			}
			raw, err := os.ReadFile(out)
			must(t, err)
			if string(raw) != string(stored(t, b, c.key)) {
				t.Fatalf("%v: --record-out wrote %q", c.addr, raw)
			}
			env, err := signature.ParseEnvelope([]byte(stdout))
			must(t, err)
			if _, err := signature.VerifyRecord(env, []*signature.Verifier{ci.s.Public()}, c.key, digest.Bytes(raw), release.PredicateType(c.key)); err != nil {
				t.Fatalf("%v: %v", c.addr, err)
			}
		}
	})
}
