package signcli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestCosignVerifiesWhatEnvelopePrints: cosign verify-blob-attestation,
// run as the envelope usage text says, accepts each envelope `envelope
// --key-id` prints against the bytes --record-out wrote, and refuses it
// for other bytes or another key. Skipped without COSIGN_PATH (failed
// under CI, which builds cosign: scripts/cosign.sh).
func TestCosignVerifiesWhatEnvelopePrints(t *testing.T) {
	cosign := os.Getenv("COSIGN_PATH")
	if cosign == "" {
		msg := "cosign test: set COSIGN_PATH to a cosign binary (COSIGN_PATH=$(./scripts/cosign.sh))"
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + msg)
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	dir := t.TempDir()
	ci, manager := newKey(t, dir, "ci", true), newKey(t, dir, "manager", false)
	publish(t, b, "1.0.0", ci, manager)
	verify := func(pub, env, blob string) (string, error) {
		cmd := exec.Command(cosign, "verify-blob-attestation", "--key", pub, "--signature", env,
			"--type", release.RecordPredicateType, "--insecure-ignore-tlog=true", blob)
		cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	other := filepath.Join(dir, "other.json")
	must(t, os.WriteFile(other, []byte("{}\n"), 0o644))
	for _, k := range []key{ci, manager} {
		record, env := filepath.Join(dir, k.id+".record"), filepath.Join(dir, k.id+".env.json")
		code, stdout, stderr := run("envelope", "--store", "file://"+root, "--release", "web@1.0.0", "--key-id", k.id, "--record-out", record)
		if code != 0 {
			t.Fatalf("envelope: exit %d\n%s%s", code, stdout, stderr)
		}
		must(t, os.WriteFile(env, []byte(stdout), 0o644))
		if out, err := verify(k.pub, env, record); err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("cosign refused the envelope of %s: %v\n%s", k.id, err, out)
		}
		if out, err := verify(k.pub, env, other); err == nil {
			t.Fatalf("cosign accepted the envelope for other bytes:\n%s", out)
		}
		wrong := ci
		if k == ci {
			wrong = manager
		}
		if out, err := verify(wrong.pub, env, record); err == nil {
			t.Fatalf("cosign accepted %s's envelope with another key:\n%s", k.id, out)
		}
	}
}

// TestCosignVerifiesABuildCountersigned: after a key rotation, `sign
// --action` countersigns a build record CI signed, and cosign
// verify-blob-attestation, run as the envelope usage text says, accepts
// both keys' envelopes as SLSA provenance of the build's output file and
// of the record --record-out wrote, and refuses them for other bytes.
// Skipped without COSIGN_PATH (failed under CI).
func TestCosignVerifiesABuildCountersigned(t *testing.T) {
	cosign := os.Getenv("COSIGN_PATH")
	if cosign == "" {
		msg := "cosign test: set COSIGN_PATH to a cosign binary (COSIGN_PATH=$(./scripts/cosign.sh))"
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + msg)
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	b, err := filestore.New(root)
	must(t, err)
	dir := t.TempDir()
	ci, rotated := newKey(t, dir, "ci", true), newKey(t, dir, "rotated", false)
	output := []byte("built\n")
	act := buildSigned(t, b, output, &ci)
	st := []string{"--store", "file://" + root, "--action", act.Key.String()}
	if code, stdout, stderr := run("sign", append(st, "--key", rotated.priv, "--trusted-key", ci.pub)...); code != 0 {
		t.Fatalf("sign: exit %d\n%s%s", code, stdout, stderr)
	}
	outFile, other := filepath.Join(dir, "out"), filepath.Join(dir, "other")
	must(t, os.WriteFile(outFile, output, 0o644))
	must(t, os.WriteFile(other, []byte("not built\n"), 0o644))
	for _, k := range []key{ci, rotated} {
		record, env := filepath.Join(dir, k.id+".record"), filepath.Join(dir, k.id+".env.json")
		code, stdout, stderr := run("envelope", append(st, "--key-id", k.id, "--record-out", record)...)
		if code != 0 {
			t.Fatalf("envelope: exit %d\n%s%s", code, stdout, stderr)
		}
		must(t, os.WriteFile(env, []byte(stdout), 0o644))
		verify := func(blob string) (string, error) {
			cmd := exec.Command(cosign, "verify-blob-attestation", "--key", k.pub, "--type", "slsaprovenance1",
				"--insecure-ignore-tlog=true", "--signature", env, blob)
			cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		for _, blob := range []string{outFile, record} {
			if out, err := verify(blob); err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("cosign refused %s's envelope for %s: %v\n%s", k.id, blob, err, out)
			}
		}
		if out, err := verify(other); err == nil {
			t.Fatalf("cosign accepted %s's envelope for other bytes:\n%s", k.id, out)
		}
	}
}
