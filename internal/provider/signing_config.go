package provider

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
)

// The environment variables signing_key falls back to: the key itself
// (PEM), or the path of a file holding it.
const (
	EnvSigningKey     = "IMMUTABLE_SIGNING_KEY"
	EnvSigningKeyFile = "IMMUTABLE_SIGNING_KEY_FILE"
)

// signingKeyDescription is signing_key's MarkdownDescription.
const signingKeyDescription = "Path of a private key, Ed25519 or ECDSA P-256, that signs every record the provider " +
	"writes: release versions, channel moves, yank entries and build records (with a SLSA provenance). The key is in " +
	"PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or an unencrypted OpenSSH private key (`ssh-keygen -t ed25519 -N \"\"`): " +
	"either signs the same DSSE signature under the same key ID, so its public key may be trusted as PEM or as an SSH " +
	"line. Each record gets a DSSE envelope over an in-toto " +
	"statement naming the record and the sha256 of its bytes, stored once beside it under `signatures/`; a record may " +
	"carry several (one per key). Defaults to the `" + EnvSigningKey + "` environment variable (the PEM itself), then " +
	"`" + EnvSigningKeyFile + "` (a path). The key is never stored in state or logged. Unset: nothing is signed; " +
	"under a `trust` policy that requires signatures, build steps then run without being recorded, and publishing, " +
	"moving a channel and yanking are refused at plan (the policy would refuse their unsigned records)."

// loadSigner reads the signing key of the configuration (attr) or, unset,
// of the environment: nil when there is none. Its diagnostics name the
// attribute, and never the key's bytes.
func loadSigner(attr types.String) (*signature.Signer, diag.Diagnostics) {
	var diags diag.Diagnostics
	at := path.Root("signing_key")
	if attr.IsUnknown() {
		diags.AddAttributeError(at, "Unknown signing key",
			"signing_key depends on a value only known after apply; the provider needs it to plan. Use a literal path or a variable.")
		return nil, diags
	}
	var pem []byte
	var source string
	switch env, file := os.Getenv(EnvSigningKey), os.Getenv(EnvSigningKeyFile); {
	case !attr.IsNull():
		p := attr.ValueString()
		if looksLikeKey(p) {
			diags.AddAttributeError(at, "Signing key given instead of its path",
				"signing_key holds what looks like a key (PEM text, several lines, or a long run of base64), not a path; "+
					"its value is not shown here. signing_key takes a path to the key file; to pass the PEM itself use the "+
					EnvSigningKey+" environment variable (file(...) in the configuration puts the key in plain text in the "+
					"configuration and the plan's logs).")
			return nil, diags
		}
		source = fmt.Sprintf("the file %q that signing_key names", p)
		b, err := os.ReadFile(p) //nolint:gosec // the user's own key file, by design
		if err != nil {
			diags.AddAttributeError(at, "Cannot read the signing key",
				fmt.Sprintf("Cannot read %s: %v. Set signing_key to the path of a private key (PKCS#8 PEM or OpenSSH) readable by "+
					"Terraform, or leave it unset to sign nothing.", source, pathErr(err)))
			return nil, diags
		}
		pem = b
	case env != "" && file != "":
		diags.AddAttributeError(at, "Two signing keys",
			fmt.Sprintf("Both %s and %s are set, so which key signs is ambiguous. Unset one of them (or set signing_key, "+
				"which takes precedence over both).", EnvSigningKey, EnvSigningKeyFile))
		return nil, diags
	case env != "":
		if !strings.Contains(env, "-----BEGIN") && !looksLikeKey(env) {
			diags.AddAttributeError(at, "Signing key path given instead of the key",
				fmt.Sprintf("%s holds no PEM block (\"-----BEGIN PRIVATE KEY-----\"): it looks like a path. %s takes the PEM "+
					"text of the key itself: for a path to the key file, use %s or signing_key instead.", EnvSigningKey, EnvSigningKey, EnvSigningKeyFile))
			return nil, diags
		}
		pem, source = []byte(env), "the "+EnvSigningKey+" environment variable"
	case file != "":
		if looksLikeKey(file) {
			diags.AddAttributeError(at, "Signing key given instead of its path",
				fmt.Sprintf("%s holds what looks like a key (PEM text, several lines, or a long run of base64), not a path; "+
					"its value is not shown here. %s takes a path to the key file; to pass the PEM itself use the %s "+
					"environment variable.", EnvSigningKeyFile, EnvSigningKeyFile, EnvSigningKey))
			return nil, diags
		}
		source = fmt.Sprintf("the file %q that %s names", file, EnvSigningKeyFile)
		b, err := os.ReadFile(file) //nolint:gosec // the user's own key file, by design
		if err != nil {
			diags.AddAttributeError(at, "Cannot read the signing key",
				fmt.Sprintf("Cannot read %s: %v. Set %s to the path of a private key (PKCS#8 PEM or OpenSSH) readable by Terraform, "+
					"or unset it to sign nothing.", source, pathErr(err), EnvSigningKeyFile))
			return nil, diags
		}
		pem = b
	default:
		return nil, nil
	}
	s, err := signature.LoadSigner(pem)
	if err != nil {
		// The error of the parser only: it never quotes the key.
		diags.AddAttributeError(at, "Invalid signing key",
			fmt.Sprintf("%s does not hold a usable signing key: %v. signing_key takes a private key in PKCS#8 PEM "+
				"(\"-----BEGIN PRIVATE KEY-----\"), Ed25519 or ECDSA P-256, or an unencrypted OpenSSH private key "+
				"(ssh-ed25519 or ecdsa-sha2-nistp256): make one with `openssl genpkey -algorithm ed25519 -out signing.pem` "+
				"or `ssh-keygen -t ed25519 -N \"\" -f signing`, or convert an existing one with `openssl pkcs8 -topk8 -nocrypt`.", upperFirst(source), err))
		return nil, diags
	}
	return s, nil
}

// EnvBuilderID is the environment variable builder_id falls back to.
const EnvBuilderID = "IMMUTABLE_BUILDER_ID"

// builderIDDescription is builder_id's MarkdownDescription.
const builderIDDescription = "Who builds: the `builder.id` (an absolute URI whose scheme is `http`, `https`, `urn` or `spiffe`, " +
	"printable, at most 1024 bytes, such as `https://ci.example.com/runners/linux` or `urn:example:ci`) that the SLSA provenance of every build record " +
	"signed with `signing_key` names — the identity a verifier's policy checks (\"only builds by CI\"). It is in " +
	"the signature only, never in the build record or its key: builders with different IDs share the build cache, " +
	"and changing it rebuilds nothing. Defaults to the `" + EnvBuilderID + "` environment variable, then `" +
	actioncache.DefaultBuilderID + "`."

// loadBuilderID reads builder_id or, unset, its environment variable:
// "" (the default builder) when neither is set.
func loadBuilderID(attr types.String) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	at := path.Root("builder_id")
	if attr.IsUnknown() {
		diags.AddAttributeError(at, "Unknown builder ID",
			"builder_id depends on a value only known after apply; the provider needs it to plan. Use a literal or a variable.")
		return "", diags
	}
	id, source := attr.ValueString(), "builder_id"
	if attr.IsNull() {
		id, source = os.Getenv(EnvBuilderID), "The "+EnvBuilderID+" environment variable"
		if id == "" {
			return "", nil
		}
	}
	if err := signature.CheckURI(id); err != nil {
		diags.AddAttributeError(at, "Invalid builder ID",
			fmt.Sprintf("%s is not a usable builder ID: %v. A SLSA builder.id is an absolute URI naming who builds: its scheme "+
				"http, https, urn or spiffe, printable (no control, bidi or invisible characters), at most %d bytes, such as "+
				"\"https://ci.example.com/runners/linux\" or \"urn:example:ci\"; or leave it unset for %s.",
				source, err, signature.MaxURI, actioncache.DefaultBuilderID))
		return "", diags
	}
	return id, nil
}

// maxKeyPath is the length past which a signing key's path is taken for
// a key (no one names a key file with 256 characters; a PEM key has more).
const maxKeyPath = 256

// base64Run is a run of base64 a path would not be: a key's DER pasted
// without its PEM lines.
var base64Run = regexp.MustCompile(`^[A-Za-z0-9+/]{40,}={0,2}$`)

// looksLikeKey reports whether s, given where a path to a key file is
// expected, is more likely the key itself: PEM text, several lines, a
// value longer than any path, or a long run of base64. Such a value is
// never echoed in a message.
func looksLikeKey(s string) bool {
	return strings.Contains(s, "-----BEGIN") || strings.ContainsAny(s, "\r\n") || len(s) > maxKeyPath || base64Run.MatchString(s)
}

// pathErr is err without the *fs.PathError's path, which the message
// already names.
func pathErr(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// signatureError is a record written but not signed.
func signatureError(err *release.SignatureError) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Record written but not signed",
		fmt.Sprintf("%s. The record stands (records are written once); apply again to sign it: the provider finds it "+
			"and signs it then. If the signature already there is not this key's valid one, move it out of the store.", upperFirst(err.Error())))
}

// writesRefused reports whether a record this provider writes would be
// refused by its own trust policy: the policy requires signatures
// (trust.require_signatures, true unless set to false) and the provider
// has no signing key, so what it writes goes unsigned, and this workspace
// (and everyone under the same policy) refuses it when reading it back.
func (d *providerData) writesRefused() bool {
	return d != nil && d.signer == nil && d.trust.Enabled() && d.trust.Require
}

// buildCacheMode is the build cache's mode in effect: build_cache, but
// read-only where a written build record would be refused (writesRefused):
// the step runs and its output is used, and no record is written that
// would stop every later plan's cache hit.
func (d *providerData) buildCacheMode() actioncache.Mode {
	if d.buildCache == CacheReadWrite && d.writesRefused() {
		return CacheReadOnly
	}
	return d.buildCache
}

// unsignedBuildWarning says that a step run here will not be recorded.
func unsignedBuildWarning() diag.Diagnostic {
	return diag.NewWarningDiagnostic("Build record not written: no signing key",
		"This step runs, and its output is used, but its build record is not written to the build cache: the provider "+
			"has no signing_key, and its trust policy requires signatures (trust.require_signatures, true unless set to false), "+
			"so an unsigned record would be refused by this workspace and by every other under the same policy, blocking "+
			"their cache hit for this step. To record it, configure signing_key (or "+EnvSigningKey+" or "+EnvSigningKeyFile+
			") with a trusted key; to silence this, set build_cache = \""+string(CacheReadOnly)+"\".")
}

// unsignedWriteError refuses, at plan, a record (what: "release version",
// "channel move", "yank entry") the provider would write unsigned under a
// policy that requires signatures (writesRefused). Nothing is written.
func unsignedWriteError(what string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Record would be unsigned",
		fmt.Sprintf("This %s would be written without a signature: the provider has no signing_key, and its trust policy "+
			"requires signatures (trust.require_signatures, true unless set to false). This workspace, and every other under "+
			"the same policy, would refuse the record when reading it back. Nothing was written. Configure signing_key (or the "+
			"%s or %s environment variable) with a key trust.keys trusts, or set trust.require_signatures = false while "+
			"the store is still being signed.", what, EnvSigningKey, EnvSigningKeyFile))
}
