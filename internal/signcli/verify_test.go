package signcli

import (
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestVerifyStrayObjects: an object beside a record's trusted signature
// that is not a signature (junk, a name that is no key ID, one holding an
// escape sequence and a right-to-left override) hides nothing: verify
// exits 0 and lists it as ignored, quoted; sign countersigns. Without a
// trusted signature, verify exits 1 naming it and saying it is no
// signature. It exited 1 for good, and printed the name raw.
func TestVerifyStrayObjects(t *testing.T) {
	stores(t, func(t *testing.T, b store.Backend, flags []string) {
		dir := t.TempDir()
		ci, manager := newKey(t, dir, "ci", true), newKey(t, dir, "manager", false)
		publish(t, b, "1.0.0", ci)
		publish(t, b, "2.0.0")
		evil := "EVIL\u202e"
		if strings.HasPrefix(flags[1], "file://") { // S3 listings are XML, which cannot carry an escape
			evil = "\x1b[31mEVIL\x1b[0m\u202e"
		}
		for _, v := range []string{"1.0.0", "2.0.0"} {
			sum := digest.Bytes(stored(t, b, release.VersionKey("web", v)))
			must(t, b.Create(ctx, store.SignaturesPrefix(sum)+"zzzz", strings.NewReader("junk\n")))
			must(t, b.Create(ctx, store.SignaturesPrefix(sum)+evil, strings.NewReader("junk\n")))
		}
		raw := func(s string) bool { return strings.ContainsAny(s, "\x1b\u202e") }

		code, stdout, stderr := run("verify", append([]string{"--release", "web@1.0.0", "--trusted-key", ci.pub}, flags...)...)
		if code != 0 || !strings.Contains(stdout, "trusted, valid") || !strings.Contains(stdout, `zzzz": not a signature`) ||
			!strings.Contains(stdout, `\u202E"`) || raw(stdout+stderr) {
			t.Fatalf("verify beside stray objects: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = run("sign", append([]string{"--release", "web@1.0.0", "--key", manager.priv, "--trusted-key", ci.pub}, flags...)...)
		if code != 0 || raw(stdout+stderr) {
			t.Fatalf("sign beside stray objects: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = run("verify", append([]string{"--release", "web@2.0.0", "--trusted-key", ci.pub}, flags...)...)
		if code != 1 || !strings.Contains(stderr, "it has no signatures") || !strings.Contains(stderr, "not signatures") ||
			!strings.Contains(stdout, `\u202E"`) || raw(stdout+stderr) {
			t.Fatalf("verify of stray objects alone: exit %d\n%s%s", code, stdout, stderr)
		}
	})
}
