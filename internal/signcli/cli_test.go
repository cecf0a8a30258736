package signcli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/gc"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

var ctx = context.Background()

func run(cmd string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(ctx, cmd, args, &o, &e)
	return code, o.String(), e.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// key is a new signing key, written as key.pem and pub.pem in dir.
type key struct {
	s             *signature.Signer
	priv, pub, id string
}

func newKey(t *testing.T, dir, name string, ec bool) key {
	t.Helper()
	var k any
	var err error
	if ec {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	s, err := signature.LoadSigner(privPEM)
	must(t, err)
	out := key{s: s, priv: filepath.Join(dir, name+".pem"), pub: filepath.Join(dir, name+".pub.pem"), id: s.KeyID()}
	must(t, os.WriteFile(out.priv, privPEM, 0o600))
	must(t, os.WriteFile(out.pub, s.Public().PEM(), 0o644))
	return out
}

// stores runs f on a file store and, with VERSITYGW_PATH, on S3, with the
// flags that name the store.
func stores(t *testing.T, f func(t *testing.T, b store.Backend, flags []string)) {
	t.Run("file", func(t *testing.T) {
		root := t.TempDir()
		b, err := filestore.New(root)
		must(t, err)
		f(t, b, []string{"--store", "file://" + root})
	})
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		bucket := srv.NewBucket(t)
		b, err := s3store.New(ctx, bucket, "p", srv.Settings())
		must(t, err)
		f(t, b, []string{"--store", "s3://" + bucket + "/p", "--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", srv.Region})
	})
}

// publish writes web@version, signed by signers (none: unsigned).
func publish(t *testing.T, b store.Backend, version string, signers ...key) {
	t.Helper()
	r := &release.Record{Name: "web", Version: version, Artifacts: map[string]string{"app.zip": digest.Bytes([]byte(version)).String()}}
	_, err := release.WriteRecord(ctx, b, r, time.Now())
	must(t, err)
	for _, k := range signers {
		_, err := release.Countersign(ctx, b, k.s, "web", version)
		must(t, err)
	}
}

func stored(t *testing.T, b store.Backend, k string) []byte {
	t.Helper()
	rc, err := b.Open(ctx, k)
	must(t, err)
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(rc)
	must(t, err)
	return raw
}

// TestVerify: trusted → 0; an untrusted key → 1 naming the key ID found;
// a tampered signature → 1; no signatures → 1; a countersignature by a
// second key, made with `sign`, makes the second key's verify pass.
func TestVerify(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci, manager := newKey(t, dir, "ci", true), newKey(t, dir, "manager", false)
		publish(t, b, "1.0.0", ci)
		publish(t, b, "2.0.0")
		verify := func(version string, keys ...key) (int, string, string) {
			args := append([]string{"--release", "web@" + version}, flags...)
			for _, k := range keys {
				args = append(args, "--trusted-key", k.pub)
			}
			return run("verify", args...)
		}

		code, stdout, stderr := verify("1.0.0", ci)
		sum := digest.Bytes(stored(t, b, release.VersionKey("web", "1.0.0")))
		if code != 0 || !strings.Contains(stdout, "key ID "+ci.id+": trusted, valid") ||
			!strings.Contains(stdout, "web@1.0.0 ("+release.VersionKey("web", "1.0.0")+", "+sum.String()+"): 1 signatures") {
			t.Fatalf("trusted: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = verify("1.0.0", manager)
		if code != 1 || !strings.Contains(stdout, "key ID "+ci.id+": not trusted") ||
			!strings.Contains(stderr, "signed only by keys not trusted: key IDs "+ci.id) {
			t.Fatalf("untrusted: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = verify("2.0.0", ci)
		if code != 1 || !strings.Contains(stdout, "0 signatures") || !strings.Contains(stderr, "it has no signatures") {
			t.Fatalf("unsigned: exit %d\n%s%s", code, stdout, stderr)
		}

		// The manager approves: `sign`, then verify with the manager's key.
		code, stdout, stderr = run("sign", append([]string{"--release", "web@1.0.0", "--key", manager.priv, "--trusted-key", ci.pub}, flags...)...)
		if code != 0 || !strings.Contains(stdout, "web@1.0.0 signed by key ID "+manager.id) {
			t.Fatalf("sign: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = verify("1.0.0", manager)
		if code != 0 || !strings.Contains(stdout, "2 signatures") || !strings.Contains(stdout, "key ID "+manager.id+": trusted, valid") ||
			!strings.Contains(stdout, "key ID "+ci.id+": not trusted") {
			t.Fatalf("after sign: exit %d\n%s%s", code, stdout, stderr)
		}
		// Signing again changes nothing.
		if code, stdout, stderr = run("sign", append([]string{"--release", "web@1.0.0", "--key", manager.priv, "--trusted-key", ci.pub}, flags...)...); code != 0 {
			t.Fatalf("sign again: exit %d\n%s%s", code, stdout, stderr)
		}

		// Tampered: CI's signature replaced by one over another payload.
		sigKey := store.SignatureKey(digest.Bytes(stored(t, b, release.VersionKey("web", "1.0.0"))), ci.id)
		env, err := signature.ParseEnvelope(stored(t, b, sigKey))
		must(t, err)
		payload, err := env.DecodeB64Payload()
		must(t, err)
		env.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte(`"release"`), []byte(`"yank"`), 1))
		body, err := json.Marshal(env)
		must(t, err)
		d, ok := b.(store.Deleter)
		if !ok {
			t.Fatalf("%T cannot delete", b)
		}
		must(t, d.Delete(ctx, sigKey))
		must(t, b.Create(ctx, sigKey, bytes.NewReader(body)))
		code, stdout, stderr = verify("1.0.0", ci)
		if code != 1 || !strings.Contains(stdout, "key ID "+ci.id+": trusted, INVALID") || !strings.Contains(stderr, "the signatures of trusted keys "+ci.id+" do not verify") {
			t.Fatalf("tampered: exit %d\n%s%s", code, stdout, stderr)
		}
		// Still valid by the manager, trusted too.
		if code, stdout, stderr = verify("1.0.0", ci, manager); code != 0 {
			t.Fatalf("tampered CI signature, valid manager's: exit %d\n%s%s", code, stdout, stderr)
		}
	})
}

// TestVerifyChannel: --channel checks the current move, then its version.
func TestVerifyChannel(t *testing.T) {
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	dir := t.TempDir()
	ci := newKey(t, dir, "ci", false)
	publish(t, b, "1.0.0", ci)
	m, err := release.WriteMove(ctx, b, "web", "prod", 0, "", "1.0.0", "first", time.Now())
	must(t, err)
	args := []string{"--store", "file://" + root, "--channel", "web/prod", "--trusted-key", ci.pub}
	code, stdout, stderr := run("verify", args...)
	// The message gives the command that countersigns this move.
	if code != 1 || !strings.Contains(stderr, "move 1 of web/prod (to 1.0.0) is not signed by a trusted key: it has no signatures") ||
		!strings.Contains(stderr, "terraform-provider-immutable sign --store STORE --key TRUSTED-KEY.pem --trusted-key SIGNER.pub --move web/prod@1`") {
		t.Fatalf("unsigned move: exit %d\n%s%s", code, stdout, stderr)
	}
	_, err = release.SignRecord(ctx, b, ci.s, store.MoveKey("web", "prod", 1), m.Stored(), release.KindMove, nil)
	must(t, err)
	code, stdout, stderr = run("verify", args...)
	if code != 0 || strings.Count(stdout, "trusted, valid") != 2 || !strings.Contains(stdout, "web@1.0.0") {
		t.Fatalf("signed move: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestEnvelope: the envelopes print one a line, --key-id picks one,
// --record-out writes the bytes its statement is about.
func TestEnvelope(t *testing.T) {
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	dir := t.TempDir()
	ci, manager := newKey(t, dir, "ci", true), newKey(t, dir, "manager", false)
	publish(t, b, "1.0.0", ci, manager)
	publish(t, b, "2.0.0")
	flags := []string{"--store", "file://" + root}
	code, stdout, stderr := run("envelope", append([]string{"--release", "web@1.0.0"}, flags...)...)
	if code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Fatalf("envelope: exit %d\n%s%s", code, stdout, stderr)
	}
	out := filepath.Join(dir, "record.json")
	code, stdout, stderr = run("envelope", append([]string{"--release", "web@1.0.0", "--key-id", manager.id, "--record-out", out}, flags...)...)
	if code != 0 {
		t.Fatalf("envelope --key-id: exit %d\n%s%s", code, stdout, stderr)
	}
	env, err := signature.ParseEnvelope([]byte(stdout))
	must(t, err)
	raw, err := os.ReadFile(out)
	must(t, err)
	if !bytes.Equal(raw, stored(t, b, release.VersionKey("web", "1.0.0"))) {
		t.Fatalf("--record-out wrote %q", raw)
	}
	if err := release.VerifySignature(env, []*signature.Verifier{manager.s.Public()}, release.VersionKey("web", "1.0.0"), digest.Bytes(raw)); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("the envelope printed: %v, %d signatures", err, len(env.Signatures))
	}
	code, stdout, stderr = run("envelope", append([]string{"--release", "web@1.0.0", "--key-id", "abc"}, flags...)...)
	if code != 1 || !strings.Contains(stderr, "no signature by key ID abc") || !strings.Contains(stderr, ci.id) {
		t.Fatalf("envelope --key-id abc: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("envelope", append([]string{"--release", "web@2.0.0"}, flags...)...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "web@2.0.0 has no signatures") {
		t.Fatalf("envelope of an unsigned record: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestSignRefusesAMissingRecord: nothing is written for a version that is
// not published.
func TestSignRefusesAMissingRecord(t *testing.T) {
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	publish(t, b, "1.0.0")
	k := newKey(t, t.TempDir(), "k", false)
	before, err := b.List(ctx, "")
	must(t, err)
	code, stdout, stderr := run("sign", "--store", "file://"+root, "--release", "web@1.1.0", "--key", k.priv, "--trusted-key", k.pub)
	if code != 1 || !strings.Contains(stderr, "web@1.1.0 is not published in this store") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	after, err := b.List(ctx, "")
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("a refused sign wrote %v", after)
	}
}

// TestUsage: bad invocations exit 2 saying what to do.
func TestUsage(t *testing.T) {
	t.Setenv(gc.EnvStore, "")
	dir := t.TempDir()
	k := newKey(t, dir, "k", false)
	junk := filepath.Join(dir, "junk.pem")
	must(t, os.WriteFile(junk, []byte("not a key\n"), 0o644))
	st := []string{"--store", "file://" + dir}
	for _, c := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"verify", []string{"--release", "web@1.0.0", "--trusted-key", k.pub}, "no store: give --store URL"},
		{"verify", append([]string{"--trusted-key", k.pub}, st...), "no record: give --release NAME@VERSION, --channel RELEASE/CHANNEL"},
		{"verify", append([]string{"--release", "web", "--trusted-key", k.pub}, st...), `--release "web" has no version`},
		{"verify", append([]string{"--release", "Web@1.0.0", "--trusted-key", k.pub}, st...), `--release "Web@1.0.0"`},
		{"verify", append([]string{"--release", "web@x", "--trusted-key", k.pub}, st...), `--release "web@x"`},
		{"verify", append([]string{"--release", "web@1.0.0"}, st...), "no trusted key: give --trusted-key FILE"},
		{"verify", append([]string{"--release", "web@1.0.0", "--trusted-key", filepath.Join(dir, "absent.pem")}, st...), "--trusted-key " + filepath.Join(dir, "absent.pem")},
		{"verify", append([]string{"--release", "web@1.0.0", "--trusted-key", junk}, st...), "--trusted-key " + junk},
		{"verify", append([]string{"--release", "web@1.0.0", "--channel", "web/prod", "--trusted-key", k.pub}, st...), "give one of --release, --channel, not 2"},
		{"verify", append([]string{"--action", "sha256:" + strings.Repeat("0", 64), "--record", "x", "--trusted-key", k.pub}, st...), "give one of --record, --action, not 2"},
		{"verify", append([]string{"--record", "../../etc/passwd", "--trusted-key", k.pub}, st...), `--record "../../etc/passwd" is not a key of the store's layout`},
		{"verify", append([]string{"--record", "/releases/web/versions/1.0.0", "--trusted-key", k.pub}, st...), "is not a key of the store's layout"},
		{"verify", append([]string{"--record", "releases/web/versions/../../../x", "--trusted-key", k.pub}, st...), "is not a well-formed release version key"},
		{"verify", append([]string{"--record", "gc/store.json", "--trusted-key", k.pub}, st...), "which is not a signed record"},
		{"verify", append([]string{"--record", store.BlobKey(digest.Bytes(nil)), "--trusted-key", k.pub}, st...), "which is not a signed record"},
		{"verify", append([]string{"--record", "channels/web/prod/moves/1", "--trusted-key", k.pub}, st...), "is not a well-formed channel move key"},
		{"verify", append([]string{"--move", "web/prod", "--trusted-key", k.pub}, st...), `--move "web/prod" has no sequence number`},
		{"verify", append([]string{"--move", "web/prod@0", "--trusted-key", k.pub}, st...), `the sequence number "0"`},
		{"verify", append([]string{"--move", "web@3", "--trusted-key", k.pub}, st...), "write RELEASE/CHANNEL"},
		{"verify", append([]string{"--yank", "web", "--trusted-key", k.pub}, st...), `--yank "web" has no version`},
		{"verify", append([]string{"--yank", "web@1.0.0#x", "--trusted-key", k.pub}, st...), `the entry number "x"`},
		{"verify", append([]string{"--action", "abc", "--trusted-key", k.pub}, st...), "--action: "},
		{"sign", append([]string{"--action", "sha256:" + strings.Repeat("0", 64), "--key", k.priv, "--digest", "sha256:" + strings.Repeat("0", 64)}, st...), "a build action record is approved only with --trusted-key"},
		{"verify", append([]string{"--channel", "web", "--trusted-key", k.pub}, st...), "write RELEASE/CHANNEL"},
		{"verify", []string{"--store", "ftp://x", "--release", "web@1.0.0", "--trusted-key", k.pub}, `unknown scheme "ftp://"`},
		{"verify", []string{"--store", "file://" + filepath.Join(dir, "absent"), "--release", "web@1.0.0", "--trusted-key", k.pub}, "is not a directory: check --store"},
		{"verify", []string{"--store", "s3://b/p", "--s3-endpoint", "localhost:9000", "--release", "web@1.0.0", "--trusted-key", k.pub}, "has no scheme"},
		{"verify", append([]string{"--release", "web@1.0.0", "--trusted-key", k.pub, "now"}, st...), `unexpected argument "now"`},
		{"verify", []string{"--no-such-flag"}, "flag provided but not defined"},
		{"sign", append([]string{"--release", "web@1.0.0", "--trusted-key", k.pub}, st...), "no key: give --key FILE"},
		{"sign", append([]string{"--release", "web@1.0.0", "--key", k.pub, "--trusted-key", k.pub}, st...), "this is a public key, not a private key"},
		{"sign", append([]string{"--release", "web@1.0.0", "--key", k.priv}, st...), "nothing checks the record: give --trusted-key FILE"},
		{"sign", append([]string{"--release", "web@1.0.0", "--key", k.priv}, st...), "or --digest sha256:HEX"},
		{"sign", append([]string{"--release", "web@1.0.0", "--key", k.priv, "--digest", "abc"}, st...), "--digest: \"abc\" is not a digest"},
		{"sign", append([]string{"--release", "web@1.0.0", "--key", k.priv, "--trusted-key", junk}, st...), "--trusted-key " + junk},
		{"envelope", st, "no record: give --release"},
		{"envelope", append([]string{"--release", "web@1.0.0", "--record-out", filepath.Join(dir, "absent", "r.json")}, st...), "its directory does not exist"},
	} {
		code, stdout, stderr := run(c.cmd, c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%s %v: exit %d, %q%q; want 2 and %q", c.cmd, c.args, code, stdout, stderr, c.want)
		}
	}
	if code, _, _ := run("verify", "-h"); code != 0 {
		t.Errorf("verify -h: exit %d", code)
	}
}

// sshKey is a new OpenSSH private key (ed25519) written to dir/name, and
// its allowed_signers line for principal.
func sshKey(t *testing.T, dir, name, principal string) (priv, allowedSigners string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(k, name)
	must(t, err)
	pub, err := ssh.NewPublicKey(k.Public())
	must(t, err)
	priv = filepath.Join(dir, name)
	must(t, os.WriteFile(priv, pem.EncodeToMemory(block), 0o600))
	return priv, principal + ` namespaces="immutable-infra.dev" ` + string(ssh.MarshalAuthorizedKey(pub))
}

// TestVerifyAllowedSigners: `sign --key` takes an OpenSSH private key and
// `verify --trusted-key` an allowed_signers file, which shows the signer's
// principal next to its key ID; another allowed_signers key is not trusted,
// and the key in PEM form is the same key.
func TestVerifyAllowedSigners(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	publish(t, b, "1.0.0")
	manager, managerLine := sshKey(t, dir, "manager", "rm@example.com")
	_, otherLine := sshKey(t, dir, "other", "other@example.com")
	allowed, other := filepath.Join(dir, "allowed_signers"), filepath.Join(dir, "other_signers")
	must(t, os.WriteFile(allowed, []byte("# release managers\n"+managerLine), 0o644))
	must(t, os.WriteFile(other, []byte(otherLine), 0o644))
	raw, err := os.ReadFile(manager)
	must(t, err)
	s, err := signature.LoadSigner(raw)
	must(t, err)
	pemFile := filepath.Join(dir, "manager.pub.pem")
	must(t, os.WriteFile(pemFile, s.Public().PEM(), 0o644))
	flags := []string{"--store", "file://" + root, "--release", "web@1.0.0"}

	sum := digest.Bytes(stored(t, b, release.VersionKey("web", "1.0.0")))
	code, stdout, stderr := run("sign", append([]string{"--key", manager, "--digest", sum.String()}, flags...)...)
	if code != 0 || !strings.Contains(stdout, "signed by key ID "+s.KeyID()) {
		t.Fatalf("sign with an OpenSSH key: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("verify", append([]string{"--trusted-key", allowed}, flags...)...)
	if code != 0 || !strings.Contains(stdout, "key ID "+s.KeyID()+" (rm@example.com): trusted, valid") {
		t.Fatalf("allowed_signers: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = run("verify", append([]string{"--trusted-key", pemFile}, flags...)...); code != 0 {
		t.Fatalf("the same key as PEM: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("verify", append([]string{"--trusted-key", other}, flags...)...)
	if code != 1 || !strings.Contains(stderr, "signed only by keys not trusted: key IDs "+s.KeyID()) {
		t.Fatalf("another allowed_signers key: exit %d\n%s%s", code, stdout, stderr)
	}
	must(t, os.WriteFile(other, []byte("alice cert-authority "+strings.SplitN(otherLine, " ", 3)[2]), 0o644))
	code, stdout, stderr = run("verify", append([]string{"--trusted-key", other}, flags...)...)
	if code != 2 || !strings.Contains(stderr, "line 1: a cert-authority key") {
		t.Fatalf("a cert-authority line: exit %d\n%s%s", code, stdout, stderr)
	}
}
