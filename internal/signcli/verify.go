package signcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

const verifyUsage = `Usage: terraform-provider-immutable verify --store URL RECORD --trusted-key FILE [--trusted-key FILE...]

Checks that a signed record is signed by a trusted key: reads the record
and its signatures, prints each signature's key ID and whether it is
trusted and valid, and exits 0 when a trusted key's valid signature is
about the record's stored bytes, 1 when none is (saying why: no
signatures, only untrusted key IDs, or signatures that do not verify, and
the sign command that countersigns it), 2 on bad usage. RECORD is:

` + targetHelp + `
A channel move (--channel, --move, or its --record key) is checked, then
the version it points to, which must also be the record the move's
trusted signature approved (not one put in its place since).

A trusted key file holds one or more public keys, Ed25519 or ECDSA P-256:
PEM (-----BEGIN PUBLIC KEY-----, as ` + "`openssl pkey -pubout`" + ` writes), or SSH
public keys one a line, as in a .pub file or an allowed_signers file
("alice@example.com ssh-ed25519 AAAA..."; the principals are shown next to
the key ID). A key ID is the hex sha256 of the key's PKIX DER, the same for
an SSH key and its PEM form:
  openssl pkey -pubin -in pub.pem -outform DER | sha256sum

` + storeHelp + `
Options:
`

// keyFiles is a repeatable flag.
type keyFiles []string

func (k *keyFiles) String() string { return strings.Join(*k, ",") }

func (k *keyFiles) Set(s string) error {
	*k = append(*k, s)
	return nil
}

func verifyMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("verify", verifyUsage, "Verifying needs s3:ListBucket and s3:GetObject on the store's prefix.", stderr)
	var files keyFiles
	c.fs.Var(&files, "trusted-key", "a `FILE` of trusted public keys: PEM, or SSH (.pub, allowed_signers) (repeat for several)")
	if code, done := c.parse(args); done {
		return code
	}
	t, err := c.address()
	if err != nil {
		return c.fail(err)
	}
	if len(files) == 0 {
		return c.fail(usagef("no trusted key: give --trusted-key FILE (PEM or SSH public keys) at least once"))
	}
	trusted, err := loadTrusted(files)
	if err != nil {
		return c.fail(err)
	}
	b, err := c.open(ctx)
	if err != nil {
		return c.fail(err)
	}
	a, _, err := t.read(ctx, b)
	if err != nil {
		return c.fail(err)
	}
	what := label(a)
	if a.Move != nil {
		what += " (to " + a.Move.To + ")"
	}
	if err := check(ctx, b, stdout, what, a.Key, a.Stored, trusted); err != nil {
		return c.fail(err)
	}
	if a.Move == nil {
		return 0
	}
	// A move vouches for a version: that version's record is checked
	// too, and must be the one the move's trusted signature approved.
	m := a.Move
	r, raw, err := release.GetStored(ctx, b, m.Release, m.To)
	if err != nil {
		return c.fail(recordError(m.Release, m.To, err))
	}
	if err := check(ctx, b, stdout, m.Release+"@"+m.To, release.VersionKey(m.Release, m.To), raw, trusted); err != nil {
		return c.fail(err)
	}
	if err := release.NewTrust(trusted, true).CheckMoveRecord(ctx, b, m, r); err != nil {
		return c.fail(err)
	}
	return 0
}

// loadTrusted reads the public keys of the --trusted-key files.
func loadTrusted(files keyFiles) ([]*signature.Verifier, error) {
	var trusted []*signature.Verifier
	for _, f := range files {
		pem, err := readFile("--trusted-key", f)
		if err != nil {
			return nil, err
		}
		keys, err := signature.ParsePublicKeys(pem)
		if err != nil {
			return nil, usagef("--trusted-key %s: %v", f, err)
		}
		trusted = append(trusted, keys...)
	}
	return trusted, nil
}

// signatureStatus says of each signature of the record at key (stored
// bytes with the sha256 sum) whether its key is trusted and, if so,
// whether it verifies: one line each, and the key IDs of the valid, the
// untrusted and the invalid ones (a trusted key's with its name: Label);
// then a line for each stray object beside them that is not a signature
// (ignored). What the store holds (key IDs, names) is shown through
// usertext.Show.
func signatureStatus(envs []*signature.Envelope, stray []*signature.StoredError, trusted []*signature.Verifier, key string, sum digest.Sum) (lines, valid, untrusted, invalid []string) {
	ids := map[string]*signature.Verifier{}
	for _, v := range trusted {
		if ids[v.KeyID()] == nil {
			ids[v.KeyID()] = v
		}
	}
	for _, env := range envs {
		for _, sig := range env.Signatures {
			one := *env
			one.Signatures = []dsse.Signature{sig}
			id := usertext.Show(sig.KeyID)
			if sig.KeyID == "" {
				id = "(none)"
			}
			if sig.KeyID != "" && ids[sig.KeyID] == nil {
				untrusted = append(untrusted, id)
				lines = append(lines, fmt.Sprintf("  key ID %s: not trusted", id))
				continue
			}
			if v := ids[sig.KeyID]; v != nil {
				id = v.Label() // with the name it was trusted under
			}
			if err := release.VerifySignature(&one, trusted, key, sum); err != nil {
				invalid = append(invalid, id)
				lines = append(lines, fmt.Sprintf("  key ID %s: trusted, INVALID: %s", id, usertext.Escape(err.Error())))
				continue
			}
			valid = append(valid, id)
			lines = append(lines, fmt.Sprintf("  key ID %s: trusted, valid", id))
		}
	}
	for _, s := range stray {
		lines = append(lines, fmt.Sprintf("  %s: not a signature, ignored (%s)", usertext.Quote(s.Key), usertext.Escape(s.Detail)))
	}
	return lines, valid, untrusted, invalid
}

// check prints the signatures of the record stored at key as raw, and
// returns nil when one by a trusted key verifies, else why not. Stray
// objects beside them (not signatures) are listed, and hide nothing.
func check(ctx context.Context, b store.Backend, out io.Writer, label, key string, raw []byte, trusted []*signature.Verifier) error {
	sum := digest.Bytes(raw)
	envs, stray, err := release.ReadStored(ctx, b, key, sum)
	if err != nil {
		return err
	}
	lines, valid, untrusted, invalid := signatureStatus(envs, stray, trusted, key, sum)
	if _, err := fmt.Fprintf(out, "%s (%s, %s): %d signatures\n", label, key, sum, len(lines)-len(stray)); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(out, l); err != nil {
			return err
		}
	}
	if len(valid) > 0 {
		return nil
	}
	var why []string
	switch {
	case len(lines) == len(stray):
		why = append(why, "it has no signatures")
	case len(untrusted) > 0:
		why = append(why, "it is signed only by keys not trusted: key IDs "+strings.Join(slices.Compact(slices.Sorted(slices.Values(untrusted))), ", "))
	}
	if len(invalid) > 0 {
		why = append(why, "the signatures of trusted keys "+strings.Join(invalid, ", ")+" do not verify (the record or its signature was altered, or the signature is of another record)")
	}
	if len(stray) > 0 {
		why = append(why, fmt.Sprintf("the %d objects listed as ignored are not signatures and count for nothing either way: delete them from the store (and nothing else), or ignore them", len(stray)))
	}
	fix := "Have a holder of a trusted key countersign it, checked against its signer's public key (`" + release.SignCommand(key) + "`)"
	return errors.New(label + " is not signed by a trusted key: " + strings.Join(why, "; ") + ". " + fix +
		", or, if the key IDs above are yours, give their public keys with --trusted-key")
}
