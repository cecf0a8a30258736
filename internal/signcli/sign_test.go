package signcli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestSignChecksBeforeApproving: `sign` countersigns only a record it
// checked. With --trusted-key CI's public key, a forged record (signed by
// another key, unsigned, or carrying CI's signature of another record) is
// refused, exit 1 naming why; with --digest, a record whose sha256 is not
// the one stated is refused (the release's content digest given by
// mistake is named as such). Nothing is written on refusal, nor by
// --dry-run. What is approved is printed first: the record's key and
// sha256, the release, its artifacts, images and metadata (text from the
// store escaped, so a forged record cannot print lines of its own), and
// the signatures' key IDs. A genuine record is signed, and verify then
// trusts the approver's key.
func TestSignChecksBeforeApproving(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci, manager, rogue := newKey(t, dir, "ci", true), newKey(t, dir, "manager", false), newKey(t, dir, "rogue", false)
		publish(t, b, "1.0.0", ci)
		image := "registry.example/web@" + digest.Bytes([]byte("image")).String()
		genuine := &release.Record{Name: "web", Version: "1.1.0", Artifacts: map[string]string{"app.zip": digest.Bytes([]byte("app")).String()},
			Images: map[string]string{"api": image}, Metadata: map[string]string{"commit": "abc123"}}
		_, err := release.WriteRecord(ctx, b, genuine, time.Now())
		must(t, err)
		_, err = release.Countersign(ctx, b, ci.s, "web", "1.1.0")
		must(t, err)
		// Forged by a writer of the bucket: signed by their own key, with
		// metadata that would print a line claiming CI's trusted signature.
		lie := "ok\n  key ID " + ci.id + ": trusted, valid"
		forged := &release.Record{Name: "web", Version: "2.0.0", Artifacts: map[string]string{"app.zip": digest.Bytes([]byte("evil")).String()},
			Metadata: map[string]string{"note": lie}}
		_, err = release.WriteRecord(ctx, b, forged, time.Now())
		must(t, err)
		_, err = release.Countersign(ctx, b, rogue.s, "web", "2.0.0")
		must(t, err)
		publish(t, b, "3.0.0") // unsigned
		publish(t, b, "4.0.0") // carrying CI's signature of 1.0.0, copied beside it
		sum1 := digest.Bytes(stored(t, b, release.VersionKey("web", "1.0.0")))
		sum4 := digest.Bytes(stored(t, b, release.VersionKey("web", "4.0.0")))
		must(t, b.Create(ctx, store.SignatureKey(sum4, ci.id), strings.NewReader(string(stored(t, b, store.SignatureKey(sum1, ci.id))))))
		sum11 := digest.Bytes(stored(t, b, release.VersionKey("web", "1.1.0")))

		signatures := func() []string {
			keys, err := b.List(ctx, "signatures/")
			must(t, err)
			return keys
		}
		sign := func(version string, args ...string) (int, string, string) {
			return run("sign", append(append([]string{"--release", "web@" + version, "--key", manager.priv}, args...), flags...)...)
		}
		refused := func(why string, version string, args []string, want ...string) {
			t.Helper()
			before := signatures()
			code, stdout, stderr := sign(version, args...)
			if code != 1 || !strings.Contains(stdout, "approving web@"+version) || !strings.Contains(stderr, "refused, nothing signed") {
				t.Errorf("%s: exit %d\n%s%s", why, code, stdout, stderr)
			}
			for _, w := range want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s: stderr does not say %q:\n%s", why, w, stderr)
				}
			}
			if after := signatures(); !slices.Equal(after, before) {
				t.Errorf("%s: a refused sign wrote signatures: %v, before %v", why, after, before)
			}
		}
		ciKey := []string{"--trusted-key", ci.pub}
		refused("signed by an untrusted key", "2.0.0", ciKey, "web@2.0.0", "key IDs "+rogue.id+", none of them given with --trusted-key")
		refused("unsigned", "3.0.0", ciKey, "it has no signature")
		refused("a signature copied from another record", "4.0.0", ciKey,
			"those of keys given with --trusted-key, "+ci.id+", do not verify or name another record")
		refused("another record's digest", "1.0.0", []string{"--digest", sum11.String()},
			"has sha256 "+sum1.String()+", not the "+sum11.String()+" you reviewed")
		r1, err := release.Get(ctx, b, "web", "1.0.0")
		must(t, err)
		refused("the content digest", "1.0.0", []string{"--digest", r1.Digest}, "is the release's content digest", sum1.String())
		refused("both checks, the digest wrong", "1.1.0", []string{"--trusted-key", ci.pub, "--digest", sum1.String()}, "not the "+sum1.String())

		// A record whose artifact is not a digest: the dry run refuses it
		// as the real run does, with the same words.
		fake := &release.Record{Name: "web", Version: "5.0.0", Artifacts: map[string]string{"app.zip": digest.Bytes([]byte("app")).String() + "\nFAKE"}}
		_, err = release.WriteRecord(ctx, b, fake, time.Now())
		must(t, err)
		sum5 := digest.Bytes(stored(t, b, release.VersionKey("web", "5.0.0")))
		for _, dry := range [][]string{{"--dry-run"}, nil} {
			refused("an artifact that is not a digest "+strings.Join(dry, ""), "5.0.0", append([]string{"--digest", sum5.String()}, dry...),
				release.VersionKey("web", "5.0.0")+" was altered after it was published")
		}

		// What is approved is printed; the forged metadata shows escaped.
		before := signatures()
		code, stdout, stderr := run("sign", append([]string{"--release", "web@2.0.0", "--dry-run"}, flags...)...)
		if code != 0 || strings.Contains(stdout, "\n  key ID "+ci.id) || !strings.Contains(stdout, `note  "ok\n  key ID `+ci.id) ||
			!strings.Contains(stdout, "key ID "+rogue.id+": not trusted") || !strings.Contains(stdout, "not checked (give --trusted-key or --digest); nothing signed (--dry-run)") {
			t.Errorf("dry run of the forged record: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = sign("1.1.0", "--trusted-key", ci.pub, "--dry-run")
		if code != 0 || !strings.Contains(stdout, "checked; nothing signed (--dry-run)") {
			t.Errorf("dry run: exit %d\n%s%s", code, stdout, stderr)
		}
		if after := signatures(); !slices.Equal(after, before) {
			t.Errorf("--dry-run wrote signatures: %v, before %v", after, before)
		}
		for _, want := range []string{
			"approving web@1.1.0\n",
			"  record     " + release.VersionKey("web", "1.1.0") + "\n",
			"  sha256     " + sum11.String() + " (what --digest states)\n",
			"artifacts (1):\n  app.zip  " + digest.Bytes([]byte("app")).String() + "\n",
			"images (1):\n  api  " + image + "\n",
			"metadata (1):\n  commit  abc123\n",
			"signatures (1):\n  key ID " + ci.id + ": trusted, valid\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the dry run does not print %q:\n%s", want, stdout)
			}
		}

		// Approved: by CI's signature, and (an unsigned record) by the
		// digest reviewed.
		code, stdout, stderr = sign("1.1.0", "--trusted-key", ci.pub)
		if code != 0 || !strings.Contains(stdout, "approving web@1.1.0") || !strings.Contains(stdout, "web@1.1.0 signed by key ID "+manager.id) {
			t.Fatalf("sign: exit %d\n%s%s", code, stdout, stderr)
		}
		sum3 := digest.Bytes(stored(t, b, release.VersionKey("web", "3.0.0")))
		if code, stdout, stderr = sign("3.0.0", "--digest", sum3.String()); code != 0 {
			t.Fatalf("sign --digest: exit %d\n%s%s", code, stdout, stderr)
		}
		for _, v := range []string{"1.1.0", "3.0.0"} {
			code, stdout, stderr = run("verify", append([]string{"--release", "web@" + v, "--trusted-key", manager.pub}, flags...)...)
			if code != 0 {
				t.Errorf("verify %s with the approver's key: exit %d\n%s%s", v, code, stdout, stderr)
			}
		}
	})
}

// TestEnvelopeRecordOut: --record-out refuses a file that exists (exit 2,
// left as it was) unless --force, which replaces it; and refuses, even
// with --force, a path inside a file:// store, directly or through a
// symbolic link, leaving the store's object and its mode as they were.
// It overwrote any file, a store's record too (mode 0444 → 0644).
func TestEnvelopeRecordOut(t *testing.T) {
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	dir := t.TempDir()
	ci := newKey(t, dir, "ci", true)
	publish(t, b, "1.0.0", ci)
	publish(t, b, "2.0.0", ci)
	flags := []string{"--store", "file://" + root, "--release", "web@1.0.0"}
	record := stored(t, b, release.VersionKey("web", "1.0.0"))

	out := filepath.Join(dir, "record.json")
	must(t, os.WriteFile(out, []byte("mine\n"), 0o600))
	code, stdout, stderr := run("envelope", append(flags, "--record-out", out)...)
	if got, _ := os.ReadFile(out); code != 2 || string(got) != "mine\n" || !strings.Contains(stderr, "exists") || !strings.Contains(stderr, "--force") {
		t.Fatalf("--record-out onto a file: exit %d, file %q\n%s%s", code, got, stdout, stderr)
	}
	code, stdout, stderr = run("envelope", append(flags, "--record-out", out, "--force")...)
	if got, _ := os.ReadFile(out); code != 0 || !bytes.Equal(got, record) {
		t.Fatalf("--record-out --force: exit %d, file %q\n%s%s", code, got, stdout, stderr)
	}

	inStore := filepath.Join(root, filepath.FromSlash(release.VersionKey("web", "2.0.0")))
	before := stored(t, b, release.VersionKey("web", "2.0.0"))
	fi, err := os.Stat(inStore)
	must(t, err)
	link := filepath.Join(t.TempDir(), "store-link")
	must(t, os.Symlink(filepath.Join(root, "releases"), link))
	for _, p := range []string{inStore, filepath.Join(root, "releases", "copy.json"), filepath.Join(link, "web", "versions", "2.0.0")} {
		code, stdout, stderr = run("envelope", append(flags, "--record-out", p, "--force")...)
		if code != 2 || !strings.Contains(stderr, "inside the store") {
			t.Errorf("--record-out %s: exit %d\n%s%s", p, code, stdout, stderr)
		}
	}
	after, err := os.Stat(inStore)
	must(t, err)
	if !bytes.Equal(stored(t, b, release.VersionKey("web", "2.0.0")), before) || after.Mode() != fi.Mode() {
		t.Fatalf("the store's record changed: mode %v → %v", fi.Mode(), after.Mode())
	}
	if _, err := os.Stat(filepath.Join(root, "releases", "copy.json")); err == nil {
		t.Fatal("a copy was written inside the store")
	}
}
