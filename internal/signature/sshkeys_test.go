package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testdata/ssh holds test-only keys made with ssh-keygen (OpenSSH 9.2p1):
//
//	ssh-keygen -t ed25519 -N "" -C ci@example.com -f ed25519
//	ssh-keygen -t ecdsa -b 256 -N "" -C rm@example.com -f ecdsa
//	ssh-keygen -e -m PKCS8 -f ecdsa.pub > ecdsa.pkcs8.pem
//	ssh-keygen -t ed25519 -N secret -f ed25519-encrypted
//	ssh-keygen -t rsa -b 2048 -N "" -f rsa
//	ssh-keygen -t ecdsa -b 384 -N "" -f ecdsa384
//	ssh-keygen -s CA -I test -n alice ed25519.pub   # ed25519-cert.pub
//
// and each *.keyid is the key's ID computed by openssl, apart from this
// package: `openssl pkey -pubin -in ecdsa.pkcs8.pem -outform DER | sha256sum`,
// and for Ed25519 (which this ssh-keygen cannot export to PKCS#8) the
// PKIX prefix of RFC 8410 before the key's 32 bytes:
//
//	(printf '\060\052\060\005\006\003\053\145\160\003\041\000'; cut -d' ' -f2 ed25519.pub | base64 -d | tail -c 32) |
//	  openssl pkey -pubin -inform DER -outform DER | sha256sum
func sshFixture(t testing.TB, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("testdata", "ssh", name))
}

// TestSSHKeyIDs: an OpenSSH private key made by ssh-keygen loads, its key
// ID is the one openssl computes for its PEM form, and its .pub line, its
// allowed_signers line and its PEM form (by ssh-keygen -e) read as the
// same key; what it signs verifies with each.
func TestSSHKeyIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  Algorithm
	}{{"ed25519", Ed25519}, {"ecdsa", ECDSAP256}} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.TrimSpace(string(sshFixture(t, tc.name+".keyid")))
			s, err := LoadSigner(sshFixture(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != want || s.Public().Algorithm() != tc.alg {
				t.Fatalf("signer: key ID %s (%s), want %s (%s; openssl | sha256sum)", s.KeyID(), s.Public().Algorithm(), want, tc.alg)
			}
			pub := sshFixture(t, tc.name+".pub")
			forms := map[string][]byte{
				".pub":            pub,
				"allowed_signers": []byte(`ops@example.com,ci@example.com namespaces="git,immutable-infra.dev" ` + string(pub)),
			}
			if tc.alg == ECDSAP256 {
				forms["ssh-keygen -e -m PKCS8"] = sshFixture(t, "ecdsa.pkcs8.pem")
			}
			env, err := Sign(s, testStatement(t, []byte("record")))
			if err != nil {
				t.Fatal(err)
			}
			for form, in := range forms {
				vs, err := ParsePublicKeys(in)
				if err != nil {
					t.Fatalf("%s: %v", form, err)
				}
				if len(vs) != 1 || vs[0].KeyID() != want {
					t.Fatalf("%s: %d keys, first %s, want one, %s", form, len(vs), vs[0].KeyID(), want)
				}
				if _, _, err := Verify(env, vs); err != nil {
					t.Fatalf("%s: %v", form, err)
				}
			}
		})
	}
}

// sshPrivateKey is priv in OpenSSH's private key format (unencrypted, or
// with a passphrase).
func sshPrivateKey(t testing.TB, priv crypto.PrivateKey, passphrase string) []byte {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// TestSSHSignerMatchesPEM: an SSH key made in Go and the same key in
// PKCS#8 PEM are one signer: the same key ID, and the same signature
// (both algorithms sign deterministically).
func TestSSHSignerMatchesPEM(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, priv := range map[string]crypto.Signer{"ed25519": edKey, "ecdsa": ecKey} {
		t.Run(name, func(t *testing.T) {
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			fromPEM, err := LoadSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
			if err != nil {
				t.Fatal(err)
			}
			fromSSH, err := LoadSigner(sshPrivateKey(t, priv, ""))
			if err != nil {
				t.Fatal(err)
			}
			if fromSSH.KeyID() != fromPEM.KeyID() {
				t.Fatalf("SSH key ID %s, PEM %s", fromSSH.KeyID(), fromPEM.KeyID())
			}
			a, err := Sign(fromSSH, testStatement(t, []byte("record")))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Sign(fromPEM, testStatement(t, []byte("record")))
			if err != nil {
				t.Fatal(err)
			}
			if a.Signatures[0] != b.Signatures[0] {
				t.Fatalf("signatures differ:\n%+v\n%+v", a.Signatures[0], b.Signatures[0])
			}
		})
	}
}

func TestLoadSignerRejectsSSH(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"encrypted by ssh-keygen", sshFixture(t, "ed25519-encrypted"), `encrypted (it has a passphrase): decrypt a copy with ` + "`" + `ssh-keygen -p -N "" -f KEY` + "`"},
		{"encrypted", sshPrivateKey(t, edKey, "secret"), "or give a PKCS#8 PEM key"},
		{"rsa", sshFixture(t, "rsa"), "ssh-rsa keys are not supported: use ssh-ed25519 or ecdsa-sha2-nistp256"},
		{"p384", sshFixture(t, "ecdsa384"), "curve P-384 is not supported: use ssh-ed25519 or ecdsa-sha2-nistp256"},
		{"garbage", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("garbage")}), "reading the OpenSSH private key"},
		{"public", sshFixture(t, "ed25519.pub"), "no PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSigner(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseAllowedSigners: every line form is read, with its principals
// (or comment) as the key's name; comments and blank lines are skipped;
// a key given twice is returned once.
func TestParseAllowedSigners(t *testing.T) {
	ed, ec := sshFixture(t, "ed25519.pub"), sshFixture(t, "ecdsa.pub")
	edLine, ecLine := strings.TrimSpace(string(ed)), strings.TrimSpace(string(ec))
	edID, ecID := strings.TrimSpace(string(sshFixture(t, "ed25519.keyid"))), strings.TrimSpace(string(sshFixture(t, "ecdsa.keyid")))
	bare := strings.Join(strings.Fields(ecLine)[:2], " ") // no comment
	in := "# CI and the release managers\n\n" +
		"ci@example.com,ops@example.com namespaces=\"git,immutable-*\" " + edLine + "\r\n" +
		"   \t\n" +
		"rm@example.com " + bare + "\n" +
		edLine + "\n" + // again, as a .pub line: returned once
		"  # indented comment\n"
	vs, err := ParsePublicKeys([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].KeyID() != edID || vs[1].KeyID() != ecID {
		t.Fatalf("got %d keys, want ed25519 then ecdsa", len(vs))
	}
	if vs[0].Name() != "ci@example.com,ops@example.com" || vs[1].Name() != "rm@example.com" {
		t.Fatalf("names %q, %q", vs[0].Name(), vs[1].Name())
	}
	if vs[1].Label() != ecID+" (rm@example.com)" {
		t.Fatalf("label %q", vs[1].Label())
	}
	for line, name := range map[string]string{
		edLine:                                "ci@example.com", // a .pub line: its comment
		`no-pty,command="echo a b" ` + edLine: "ci@example.com", // authorized_keys options: the comment
		`alice namespaces="a b,immutable-infra.dev",no-pty ` + edLine: "alice",
		bare: "",
	} {
		vs, err := ParsePublicKeys([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if vs[0].Name() != name {
			t.Fatalf("%s: name %q, want %q", line, vs[0].Name(), name)
		}
	}
	// A PEM key has no name.
	pemKeys, err := ParsePublicKeys(sshFixture(t, "ecdsa.pkcs8.pem"))
	if err != nil || pemKeys[0].Name() != "" || pemKeys[0].Label() != ecID {
		t.Fatalf("PEM: %v, %+v", err, pemKeys)
	}
}

func TestParsePublicKeysRejectsSSH(t *testing.T) {
	ed := strings.TrimSpace(string(sshFixture(t, "ed25519.pub")))
	ecPEM := string(sshFixture(t, "ecdsa.pkcs8.pem"))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Pub, err := ssh.NewPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"cert-authority", "# CA\n@example.com cert-authority " + ed, "line 2: a cert-authority key is a CA's key"},
		{"cert-authority in options", `*@example.com namespaces="git",cert-authority ` + ed, "line 1: a cert-authority key"},
		// A Git signers file: a developer's key allowed for Git only.
		{"namespaces without ours", "ci@example.com " + ed + "\n" + `dev@example.com namespaces="git,file" ` + ed,
			`line 2: its namespaces="git,file" option does not allow the namespace immutable-infra.dev`},
		{"namespaces excluding ours", `dev@example.com namespaces="*,!immutable-infra.dev" ` + ed, "line 1: its namespaces="},
		{"namespaces, a near miss", `dev@example.com namespaces="immutable-infra.dev.evil,git" ` + ed, "add immutable-infra.dev to its namespaces"},
		// OpenSSH refuses a line with two namespaces clauses; the last must
		// not win (a Git-only clause first, ours after it).
		{"two namespaces clauses", `dev@example.com namespaces="git",namespaces="immutable-infra.dev" ` + ed,
			"line 1: it has more than one namespaces option"},
		{"two namespaces fields", `dev@example.com namespaces="git" namespaces="immutable-infra.dev" ` + ed,
			"line 1: it has more than one namespaces option"},
		{"authorized_keys cert-authority", "cert-authority " + ed, "line 1: a cert-authority key"},
		{"valid-before", ed + "\nalice valid-before=\"20300101\" " + ed, "line 2: the option valid-before sets a validity window"},
		{"valid-after", "alice valid-after=20200101 " + ed, "line 1: the option valid-after"},
		{"rsa", ed + "\n" + string(sshFixture(t, "rsa.pub")), "line 2: ssh-rsa keys are not supported: use ssh-ed25519 or ecdsa-sha2-nistp256"},
		{"p384", "alice " + string(ssh.MarshalAuthorizedKey(p384Pub)), "line 1: ecdsa-sha2-nistp384 keys are not supported"},
		{"certificate", string(sshFixture(t, "ed25519-cert.pub")), "line 1: ssh-ed25519-cert-v01@openssh.com is an SSH certificate"},
		{"truncated", "alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM4SQ9TNWc4ePXvk", "line 1: reading the ssh-ed25519 key"},
		{"junk line", ed + "\nnot a key\n", "line 2 is not an SSH public key line"},
		{"only junk", "not a key", "no PEM block or SSH public key found"},
		{"empty", "# nothing\n\n", "no PEM block or SSH public key found"},
		{"mixed", ecPEM + "alice " + ed + "\n", "line 5 is an SSH public key, but the text holds PEM blocks too"},
		{"mixed, ssh first", ed + "\n" + ecPEM, "line 1 is an SSH public key, but the text holds PEM blocks too"},
		{"ssh private", string(sshPrivateKey(t, rsaKey, "")), "PEM block 1 is an OpenSSH private key: trust its public key instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKeys([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAllowedSignersNamespaces: a line with a namespaces option is
// trusted only when its list allows SSHNamespace (exactly, or by an
// ssh-keygen pattern); a line without the option is trusted.
func TestAllowedSignersNamespaces(t *testing.T) {
	ed := strings.TrimSpace(string(sshFixture(t, "ed25519.pub")))
	for _, ns := range []string{"immutable-infra.dev", "git,immutable-infra.dev", "immutable-*", "*", "git, immutable-infra.d?v"} {
		if _, err := ParsePublicKeys([]byte(`ci@example.com namespaces="` + ns + `" ` + ed)); err != nil {
			t.Errorf("namespaces=%q: %v", ns, err)
		}
	}
	for _, ns := range []string{"git", "file,git", "immutable", "*,!immutable-infra.dev", "immutable-infra.dev,!immutable-*", ""} {
		if _, err := ParsePublicKeys([]byte(`ci@example.com namespaces="` + ns + `" ` + ed)); err == nil ||
			!strings.Contains(err.Error(), "signers file of its own") {
			t.Errorf("namespaces=%q: %v, want it refused", ns, err)
		}
	}
	if _, err := ParsePublicKeys([]byte("ci@example.com " + ed)); err != nil {
		t.Errorf("no namespaces: %v", err)
	}
}

// TestKeyNamesPrintable: a key's name comes from whoever wrote the
// allowed_signers or .pub file, and messages and `verify` print it: a
// control character (ESC, BEL), a line separator or a bidi override is
// escaped, a comment is cut at maxKeyLabel characters, and a leading
// byte order mark is no part of it (nor stops a PEM key being read).
func TestKeyNamesPrintable(t *testing.T) {
	ed := strings.TrimSpace(string(sshFixture(t, "ed25519.pub")))
	blob := strings.Join(strings.Fields(ed)[:2], " ") // without its comment
	for _, tc := range []struct{ line, want string }{
		{"ci\x1b[2J@example.com " + blob, `ci\u001B[2J@example.com`},
		{blob + " ci\a@example.com", `ci\u0007@example.com`},
		{"ci\u202e@example.com " + blob, `ci\u202E@example.com`},
		{blob + " ci\u2028root@example.com", `ci\u2028root@example.com`},
		{"\ufeffalice " + blob, "alice"},
		{"\ufeff" + blob + " alice", "alice"},
		{blob + " " + strings.Repeat("é", 200_000), strings.Repeat("é", maxKeyLabel) + "…"},
	} {
		vs, err := ParsePublicKeys([]byte(tc.line))
		if err != nil {
			t.Fatalf("%q: %v", tc.line[:min(len(tc.line), 60)], err)
		}
		if vs[0].Name() != tc.want {
			t.Errorf("%q: name %q, want %q", tc.line[:min(len(tc.line), 60)], vs[0].Name(), tc.want)
		}
	}
	// A PEM public key, and a PEM private key, saved with a byte order mark.
	pemKeys, err := ParsePublicKeys(append([]byte("\ufeff"), sshFixture(t, "ecdsa.pkcs8.pem")...))
	if err != nil || len(pemKeys) != 1 {
		t.Fatalf("PEM public key after a BOM: %v", err)
	}
	if _, err := LoadSigner(append([]byte("\ufeff"), newKey(t, ECDSAP256)...)); err != nil {
		t.Fatalf("PEM private key after a BOM: %v", err)
	}
}
