package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newKey returns a fresh PKCS#8 PEM private key of the algorithm.
func newKey(t testing.TB, alg Algorithm) []byte {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("no such algorithm %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func newSigner(t testing.TB, alg Algorithm) *Signer {
	t.Helper()
	s, err := LoadSigner(newKey(t, alg))
	if err != nil {
		t.Fatal(err)
	}
	if s.Public().Algorithm() != alg {
		t.Fatalf("algorithm %q, want %q", s.Public().Algorithm(), alg)
	}
	return s
}

// TestKeyIDMatchesOpenSSL checks the documented recipe for a key ID: with
// openssl on the machine, the key is made and hashed by openssl and sha256
// of its DER output; without it, by crypto/x509 and crypto/sha256 apart
// from the package.
func TestKeyIDMatchesOpenSSL(t *testing.T) {
	for _, tc := range []struct {
		alg     Algorithm
		genArgs []string
	}{
		{Ed25519, []string{"-algorithm", "ed25519"}},
		{ECDSAP256, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			openssl, err := exec.LookPath("openssl")
			if err != nil {
				key := newKey(t, tc.alg)
				s, err := LoadSigner(key)
				if err != nil {
					t.Fatal(err)
				}
				block, _ := pem.Decode(key)
				priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				signer, ok := priv.(crypto.Signer)
				if !ok {
					t.Fatalf("%T is not a crypto.Signer", priv)
				}
				der, err := x509.MarshalPKIXPublicKey(signer.Public())
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(der)
				if want := hex.EncodeToString(sum[:]); s.KeyID() != want {
					t.Fatalf("key ID %s, want %s (openssl not found; computed with crypto/sha256)", s.KeyID(), want)
				}
				return
			}
			dir := t.TempDir()
			keyPath, pubPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
			run(t, openssl, append(append([]string{"genpkey"}, tc.genArgs...), "-out", keyPath)...)
			run(t, openssl, "pkey", "-in", keyPath, "-pubout", "-out", pubPath)
			der := run(t, openssl, "pkey", "-pubin", "-in", pubPath, "-outform", "DER")
			sum := sha256.Sum256(der)
			want := hex.EncodeToString(sum[:])

			s, err := LoadSigner(readFile(t, keyPath))
			if err != nil {
				t.Fatal(err)
			}
			vs, err := ParsePublicKeys(readFile(t, pubPath))
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != want || vs[0].KeyID() != want || s.Public().KeyID() != want {
				t.Fatalf("key IDs %s (signer), %s (public key file), want %s (openssl | sha256)", s.KeyID(), vs[0].KeyID(), want)
			}
			if !bytes.Equal(s.Public().PEM(), readFile(t, pubPath)) {
				t.Fatalf("PEM() differs from openssl's public key:\n%s\nwant\n%s", s.Public().PEM(), readFile(t, pubPath))
			}
		})
	}
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadSignerRejects(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384PKCS8, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	pub, _ := x509.MarshalPKIXPublicKey(p256.Public())
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	good := newKey(t, Ed25519)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"rsa pkcs8", enc("PRIVATE KEY", rsaPKCS8), "RSA keys are not supported"},
		{"rsa pkcs1", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RSA keys are not supported"},
		{"p384", enc("PRIVATE KEY", p384PKCS8), "curve P-384 is not supported"},
		{"encrypted", enc("ENCRYPTED PRIVATE KEY", []byte("x")), "encrypted"},
		{"public", enc("PUBLIC KEY", pub), "public key, not a private key"},
		{"sec1", enc("EC PRIVATE KEY", sec1), "openssl pkcs8 -topk8"},
		{"two keys", append(append([]byte{}, good...), good...), "more than one PEM block"},
		{"garbage", enc("PRIVATE KEY", []byte("garbage")), "reading the PKCS#8 private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSigner(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	a, b := newSigner(t, Ed25519), newSigner(t, ECDSAP256)
	both := append(append(append([]byte("comment before\n"), a.Public().PEM()...), b.Public().PEM()...), a.Public().PEM()...)
	vs, err := ParsePublicKeys(both)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].KeyID() != a.KeyID() || vs[1].KeyID() != b.KeyID() {
		t.Fatalf("got %d keys, want a then b once each", len(vs))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"none", []byte("not pem"), "no PEM block"},
		{"private", append(a.Public().PEM(), newKey(t, ECDSAP256)...), "PEM block 2 is a private key"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), `"CERTIFICATE", not a public key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKeys(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
