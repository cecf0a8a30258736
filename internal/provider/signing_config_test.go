package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// writeSigningKey writes a new Ed25519 key (PKCS#8 PEM) to dir and
// returns its path and its signer.
func writeSigningKey(t *testing.T, dir string) (string, *signature.Signer) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	s, err := signature.LoadSigner(p)
	must(t, err)
	f := filepath.Join(dir, "signing.pem")
	must(t, os.WriteFile(f, p, 0o600))
	return f, s
}

// signedConfig is a release of the env's files, a channel moved to it and
// a yank of an earlier release, on a provider with extra settings.
// The channel is moved in a later apply: a version is published after the
// plan of the apply that publishes it.
// channel is the channel's name ("" for none).
func (e *env) signedConfig(providerExtra string, channel string) string {
	moved := ""
	if channel != "" {
		moved = fmt.Sprintf(`
resource "immutable_channel" "c" {
  release = "web"
  channel = %q
  version = immutable_release.web.version
}`, channel)
	}
	return e.providerBlock(providerExtra) + moved + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_release" "web" {
  name      = "web"
  artifacts = { site = immutable_artifact.site.digest }
}
resource "immutable_yank" "old" {
  name    = "old"
  version = "1.0.0"
  reason  = "superseded"
}
`, e.dir)
}

// TestAccSigningKey: with signing_key, the release record, the channel's
// move and the yank entry each carry a signature by the key that verifies
// and names the record's stored bytes; without it nothing is written under
// signatures/; an unusable key is an error naming signing_key, and nothing
// is written.
func TestAccSigningKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.write(siteFiles)
		st := e.backend()
		b := st.Backend()
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "old", Version: "1.0.0"}, time.Now())
		must(t, err)
		keyFile, signer := writeSigningKey(t, t.TempDir())
		bad := filepath.Join(t.TempDir(), "bad.pem")
		must(t, os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), 0o600))

		signatures := func(want int) resource.TestCheckFunc {
			return func(*terraformState) error {
				keys, err := b.List(ctx, store.FamilySignature.Dir())
				if err != nil || len(keys) != want {
					return fmt.Errorf("signatures %v (%v), want %d", keys, err, want)
				}
				return nil
			}
		}
		signed := func(key string) error {
			raw := e.read(key)
			sum := digest.Bytes(raw)
			envs, err := release.ReadSignatures(ctx, b, key, sum)
			if err != nil || len(envs) != 1 {
				return fmt.Errorf("%s: %d signatures (%v), want 1", key, len(envs), err)
			}
			if err := release.VerifySignature(envs[0], []*signature.Verifier{signer.Public()}, key, sum); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return nil
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config:      e.signedConfig(fmt.Sprintf("signing_key = %q", bad), ""),
					ExpectError: regexp.MustCompile(`(?s)Invalid signing key.*signing_key.*PKCS#8 PEM`),
				},
				{
					Config:      e.signedConfig(fmt.Sprintf("signing_key = %q", filepath.Join(t.TempDir(), "missing.pem")), ""),
					ExpectError: regexp.MustCompile(`(?s)Cannot read the signing key.*no such file or directory`),
					Check:       signatures(0),
				},
				{
					Config: e.signedConfig(fmt.Sprintf("signing_key = %q", keyFile), ""),
					Check:  signatures(2),
				},
				{
					Config: e.signedConfig(fmt.Sprintf("signing_key = %q", keyFile), "prod"),
					Check: resource.ComposeTestCheckFunc(signatures(3), func(s *terraformState) error {
						v := s.RootModule().Resources["immutable_release.web"].Primary.Attributes["version"]
						for _, k := range []string{store.VersionKey("web", v), store.MoveKey("web", "prod", 1), store.YankKey("old", "1.0.0", 1)} {
							if err := signed(k); err != nil {
								return err
							}
						}
						return nil
					}),
				},
			},
		})
		// Without the setting: a new release, a move and a yank, nothing
		// more signed (the destroy above, still signing, un-yanked).
		keys, err := b.List(ctx, store.FamilySignature.Dir())
		must(t, err)
		e.write(map[string]string{"index.html": "<h1>v2</h1>\n"})
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: e.signedConfig("", ""), Check: signatures(len(keys))},
				{Config: e.signedConfig("", "staging"), Check: signatures(len(keys))},
			},
		})
	})
}

// writeSSHSigningKey writes a new OpenSSH private key (ed25519) and an
// allowed_signers file trusting it for principal to dir, and returns
// their paths and the key's signer.
func writeSSHSigningKey(t *testing.T, dir, principal string) (keyFile, allowedSigners string, s *signature.Signer) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(k, principal)
	must(t, err)
	priv := pem.EncodeToMemory(block)
	s, err = signature.LoadSigner(priv)
	must(t, err)
	pub, err := ssh.NewPublicKey(k.Public())
	must(t, err)
	keyFile, allowedSigners = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "allowed_signers")
	must(t, os.WriteFile(keyFile, priv, 0o600))
	must(t, os.WriteFile(allowedSigners, []byte("# who may publish\n"+principal+` namespaces="git,immutable-infra.dev" `+string(ssh.MarshalAuthorizedKey(pub))), 0o600))
	return keyFile, allowedSigners, s
}

// TestAccSigningKey_ssh: an OpenSSH private key signs (signing_key) and
// an allowed_signers file is trusted (trust.keys): the data source reads
// the release it signed; trusting another allowed_signers file instead
// refuses it at plan, naming the key ID; a channel requiring the other
// key names it with its principal.
func TestAccSigningKey_ssh(t *testing.T) {
	e := newEnv(t)
	e.write(siteFiles)
	keyFile, allowed, s := writeSSHSigningKey(t, t.TempDir(), "ci@example.com")
	_, other, o := writeSSHSigningKey(t, t.TempDir(), "rm@example.com")
	raw, err := os.ReadFile(allowed)
	must(t, err)
	ca := filepath.Join(t.TempDir(), "ca_signers")
	must(t, os.WriteFile(ca, []byte("# CA\n*@example.com cert-authority "+string(raw[bytes.Index(raw, []byte("ssh-ed25519")):])), 0o600))
	provider := func(trust string) string {
		return e.providerBlock(fmt.Sprintf("signing_key = %q\n  %s", keyFile, trust))
	}
	trusting := func(allowedSigners string) string {
		return fmt.Sprintf("trust {\n    keys = [file(%q)]\n  }", allowedSigners)
	}
	releases := fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_release" "web" {
  name      = "web"
  artifacts = { site = immutable_artifact.site.digest }
}
`, e.dir)
	words := func(ws ...string) *regexp.Regexp {
		for i, w := range ws {
			ws[i] = strings.ReplaceAll(regexp.QuoteMeta(w), " ", `\s+`) // Terraform wraps the detail at spaces
		}
		return regexp.MustCompile(`(?s)` + strings.Join(ws, ".*"))
	}
	channel := "resource \"immutable_channel\" \"prod\" {\n  release = \"web\"\n  channel = \"prod\"\n  version = \"1.0.0\"\n}\n"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      provider(trusting(ca)) + releases,
				ExpectError: regexp.MustCompile(`(?s)Invalid trusted key.*trust\.keys\[0\].*line 2: a cert-authority key`),
			},
			{Config: provider(trusting(allowed)) + releases},
			{
				Config: provider(trusting(allowed)) + releases + readRelease("1.0.0"),
				Check:  resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0"),
			},
			{
				Config:      provider(trusting(other)) + releases + readRelease("1.0.0"),
				ExpectError: words("Untrusted record", store.VersionKey("web", "1.0.0"), s.KeyID()),
			},
			{
				Config: provider(fmt.Sprintf("trust {\n    keys = [file(%q)]\n    channels = { prod = [file(%q)] }\n  }", allowed, other)) +
					releases + channel,
				ExpectError: words("Version not approved for the channel", o.KeyID()+" (rm@example.com)", s.KeyID()),
			},
		},
	})
}

// TestSignatureErrorKeepsKeyCase: a message that begins with a store key
// keeps the key as it is (a key is a name: "Releases/web/…" names no
// record); a message in the provider's words starts with a capital.
func TestSignatureErrorKeepsKeyCase(t *testing.T) {
	d := signatureError(&release.SignatureError{Key: "releases/web/versions/1.0.2", Err: fmt.Errorf("store down")})
	if !strings.HasPrefix(d.Detail(), "releases/web/versions/1.0.2 was written but not signed") {
		t.Errorf("detail %q, want it to start with the key as it is", d.Detail())
	}
	if got := upperFirst("the channel moved"); got != "The channel moved" {
		t.Errorf("upperFirst: %q", got)
	}
}

// TestBuilderIDRestricted: builder_id is named in every signed
// provenance and shown by whoever reads it: a scheme other than http,
// https or urn, a bidi or invisible character, or an overlong value is
// refused at configure, on the attribute, saying what is allowed.
func TestBuilderIDRestricted(t *testing.T) {
	for in, want := range map[string]string{
		"javascript:alert(1)":                                    `the scheme "javascript:"`,
		"data:text/html,<script>alert(1)</script>":               `the scheme "data:"`,
		"file:///etc/passwd":                                     `the scheme "file:"`,
		"https://ci.example.com/\u202etxt.exe":                   "U+202E",
		"https://ci.example.com/\u200bci":                        "U+200B",
		"https://ci.example.com/" + strings.Repeat("a", 100<<10): "at most 1024 are allowed",
	} {
		_, diags := loadBuilderID(types.StringValue(in))
		if !diags.HasError() {
			t.Errorf("%.40q accepted", in)
			continue
		}
		d := diags.Errors()[0]
		if !strings.Contains(d.Detail(), want) || !strings.Contains(d.Detail(), "http, https, urn or spiffe") || len(d.Detail()) > 2000 {
			t.Errorf("%.40q: %s", in, d.Detail())
		}
	}
	if id, diags := loadBuilderID(types.StringValue("urn:example:ci")); diags.HasError() || id != "urn:example:ci" {
		t.Errorf("urn:example:ci: %v", diags)
	}
}
