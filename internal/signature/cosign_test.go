package signature

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// cosignPath is cosign's path from COSIGN_PATH; without it the test is
// skipped (under CI, failed: CI builds every tool), saying how to get one.
func cosignPath(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("COSIGN_PATH"); bin != "" {
		return bin
	}
	msg := "cosign test: set COSIGN_PATH to a cosign binary (make test builds one with scripts/cosign.sh)"
	if os.Getenv("CI") != "" {
		t.Fatal("CI: " + msg)
	}
	t.Skip(msg)
	return ""
}

// TestCosignVerifiesOurAttestation has cosign, a verifier written apart
// from this package, check a SLSA provenance signed here: the envelope,
// the signature encoding, the statement and the subject's digest against
// the blob.
func TestCosignVerifiesOurAttestation(t *testing.T) {
	cosign := cosignPath(t)
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			blob := []byte("an artifact\n")
			blobPath := filepath.Join(dir, "artifact.zip")
			write(t, blobPath, blob)

			s := newSigner(t, alg)
			p := NewProvenance("https://example.test/build/v1", "https://example.test/builder", map[string]any{"command": []string{"zip", "artifact.zip"}})
			p.BuildDefinition.ResolvedDependencies = []ResourceDescriptor{{Name: "src/main.go", Digest: SHA256(digest.Bytes([]byte("package main")))}}
			st, err := ProvenanceStatement([]Subject{{Name: "artifact.zip", Digest: digest.Bytes(blob)}}, p)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Sign(s, st)
			if err != nil {
				t.Fatal(err)
			}
			envJSON, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			envPath, pubPath := filepath.Join(dir, "envelope.json"), filepath.Join(dir, "pub.pem")
			write(t, envPath, envJSON)
			write(t, pubPath, s.Public().PEM())

			verify := func(blobPath string) (string, error) {
				return runCosign(cosign, dir, pubPath, envPath, blobPath)
			}
			if out, err := verify(blobPath); err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("cosign refused our attestation: %v\n%s", err, out)
			}
			tampered := filepath.Join(dir, "tampered.zip")
			write(t, tampered, []byte("another artifact\n"))
			if out, err := verify(tampered); err == nil {
				t.Fatalf("cosign accepted the attestation for another blob:\n%s", out)
			}
			// Another key: refused until it countersigns; then either key
			// verifies the envelope carrying both signatures.
			other := newSigner(t, Ed25519)
			otherPub := filepath.Join(dir, "other.pem")
			write(t, otherPub, other.Public().PEM())
			if out, err := runCosign(cosign, dir, otherPub, envPath, blobPath); err == nil {
				t.Fatalf("cosign accepted the attestation with another key:\n%s", out)
			}
			if err := AddSignature(env, other); err != nil {
				t.Fatal(err)
			}
			if envJSON, err = json.Marshal(env); err != nil {
				t.Fatal(err)
			}
			write(t, envPath, envJSON)
			for _, pub := range []string{pubPath, otherPub} {
				if out, err := runCosign(cosign, dir, pub, envPath, blobPath); err != nil {
					t.Fatalf("cosign refused the countersigned attestation with %s: %v\n%s", filepath.Base(pub), err, out)
				}
			}
		})
	}
}

func runCosign(cosign, dir, pubPath, envPath, blobPath string) (string, error) {
	cmd := exec.Command(cosign, "verify-blob-attestation",
		"--key", pubPath, "--signature", envPath,
		"--type", ProvenancePredicateType,
		"--insecure-ignore-tlog=true", blobPath)
	// No network, nothing written outside the test's directory.
	cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
