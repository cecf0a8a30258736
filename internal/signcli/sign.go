package signcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

const signUsage = `Usage: terraform-provider-immutable sign --store URL RECORD --key FILE --trusted-key FILE [--trusted-key FILE...]
       terraform-provider-immutable sign --store URL RECORD --key FILE --digest sha256:HEX
       terraform-provider-immutable sign --store URL RECORD --dry-run

Countersigns a signed record: an approval, such as a release manager's, or
a new key taking over what an old one signed (a key rotation). RECORD is
a release version, a channel move, a yank entry or a build action record:

` + targetHelp + `
It prints what is approved (the record's key and sha256; for a version
its artifacts, images and metadata; for a move where it goes from and to,
its number and reason, and the sha256 of the record of the version it
moves to; for a yank entry the version, whether it yanks or un-yanks it,
and the reason; for a build record its step key, output, log and the
provenance its builder signed; and the key IDs of the signatures it
carries), then checks that this is the record to approve, in one of two
ways (or both):

  --trusted-key FILE   the record must already carry a valid signature,
                       about exactly this record, by one of the public
                       keys in FILE (CI's, say, or the key being rotated
                       out). A record written into the store by anyone
                       else, unsigned or signed by another key, is refused.
  --digest sha256:HEX  the record's sha256 must be the one you reviewed (as
                       --dry-run or verify printed it): another record is
                       refused. A build record needs --trusted-key: its
                       provenance (command, inputs) is not in its sha256.

Without either nothing is signed (exit 2): anyone who can write the store
could otherwise have a forged record approved. A refused record exits 1
saying why, and nothing is written. --dry-run prints and checks, and
signs nothing (--key is then optional).

Once checked, it signs exactly the bytes checked (a record replaced since
is not signed) and stores the DSSE envelope once beside the record under
the key's ID. A version is signed as its publisher signs it (the record,
its artifacts and images); a move, yank entry or build record checked
with --trusted-key gets the trusted signature's statement signed again,
byte for byte (the record a move approved, a build's SLSA provenance), so
that both signatures say the same and cosign verifies either; a move or
yank entry approved by --digest alone is signed as its writer signs it (a
move naming the record of its version as it is now). Signing again with
the same key changes nothing.

The key is an unencrypted private key, Ed25519 or ECDSA P-256, in PKCS#8
PEM or OpenSSH form (the same key ID and signature either way):
  openssl genpkey -algorithm ed25519 -out key.pem
  openssl pkey -in key.pem -pubout -out pub.pem   # for --trusted-key
  ssh-keygen -t ed25519 -N "" -f key              # or: key.pub for --trusted-key

` + storeHelp + `A signer needs s3:GetObject and s3:ListBucket, and s3:PutObject on the
signatures only.

Options:
`

func signMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("sign", signUsage, "Signing needs s3:ListBucket and s3:GetObject on the store's prefix, and s3:PutObject on its signatures.", stderr)
	keyFile := c.fs.String("key", "", "the signing key: a PKCS#8 PEM or OpenSSH private key `FILE`")
	var files keyFiles
	c.fs.Var(&files, "trusted-key", "sign only a record a valid signature by one of the public keys in `FILE` (PEM, or SSH: .pub, allowed_signers) names (repeat for several)")
	want := c.fs.String("digest", "", "sign only a record whose sha256 is `sha256:HEX`, the one you reviewed")
	dryRun := c.fs.Bool("dry-run", false, "print what would be approved and check it; sign nothing")
	if code, done := c.parse(args); done {
		return code
	}
	t, err := c.address()
	if err != nil {
		return c.fail(err)
	}
	if t.family == store.FamilyAction && len(files) == 0 && !*dryRun {
		return c.fail(usagef("a build action record is approved only with --trusted-key FILE, its builder's public key: " +
			"a countersignature signs again the provenance that key signed (the step's command, inputs and output), " +
			"which --digest, the record's sha256, does not cover"))
	}
	if *keyFile == "" && !*dryRun {
		return c.fail(usagef("no key: give --key FILE (a PKCS#8 PEM or OpenSSH private key)"))
	}
	if len(files) == 0 && *want == "" && !*dryRun {
		return c.fail(usagef("nothing checks the record: give --trusted-key FILE, the public key of its publisher (CI), " +
			"to approve only a record that key signed, or --digest sha256:HEX, the record's sha256 you reviewed " +
			"(--dry-run prints it); without either, a record forged by anyone who can write the store would be approved"))
	}
	var wantSum digest.Sum
	if *want != "" {
		if wantSum, err = digest.Parse(*want); err != nil {
			return c.fail(usagef("--digest: %v (the record's sha256, as --dry-run prints it)", err))
		}
	}
	var s *signature.Signer
	if *keyFile != "" {
		pem, err := readFile("--key", *keyFile)
		if err != nil {
			return c.fail(err)
		}
		if s, err = signature.LoadSigner(pem); err != nil {
			return c.fail(usagef("--key %s: %v", *keyFile, err))
		}
	}
	trusted, err := loadTrusted(files)
	if err != nil {
		return c.fail(err)
	}
	b, err := c.open(ctx)
	if err != nil {
		return c.fail(err)
	}
	a, act, err := t.read(ctx, b)
	if err != nil {
		return c.fail(err)
	}
	what := label(a)
	if err := printRecord(ctx, b, stdout, a, act, trusted); err != nil {
		return c.fail(err)
	}
	if *want != "" {
		if err := a.CheckDigest(wantSum); err != nil {
			return c.fail(fmt.Errorf("refused, nothing signed: %w", err))
		}
	}
	var st *signature.Statement
	if len(files) > 0 {
		if st, err = a.TrustedStatement(trusted); err != nil {
			return c.fail(untrustedError(what, err))
		}
		if act != nil {
			err = printProvenance(stdout, st)
		} else if a.Record == nil {
			err = printSubjects(stdout, st)
		}
		if err != nil {
			return c.fail(err)
		}
	}
	if err := a.Check(ctx, b, st); err != nil { // what signing checks, with --dry-run too
		return c.fail(fmt.Errorf("refused, nothing signed: %w", err))
	}
	if *dryRun {
		checked := "checked"
		if len(files) == 0 && *want == "" {
			checked = "not checked (give --trusted-key or --digest)"
		}
		if _, err := fmt.Fprintf(stdout, "%s %s; nothing signed (--dry-run)\n", what, checked); err != nil {
			return c.fail(err)
		}
		return 0
	}
	if st != nil && a.Record == nil {
		// A move, yank entry or build record: the trusted signature's
		// statement, signed again (the record a move approved, a build's
		// provenance).
		_, err = a.SignStatement(ctx, b, s, st)
	} else {
		_, err = a.Sign(ctx, b, s)
	}
	if err != nil {
		return c.fail(err)
	}
	if _, err := fmt.Fprintf(stdout, "%s signed by key ID %s\n", what, s.KeyID()); err != nil {
		return c.fail(err)
	}
	return 0
}

// printApproval prints what an approval of a is about. Text read from the
// store is printed through usertext.Show, so that a forged record cannot
// add lines or hide characters in what the approver reads.
func printApproval(out io.Writer, a *release.Approval, trusted []*signature.Verifier) error {
	r := a.Record
	var w strings.Builder
	fmt.Fprintf(&w, "approving %s@%s\n", r.Name, r.Version)
	fmt.Fprintf(&w, "  record     %s\n", a.Key)
	fmt.Fprintf(&w, "  sha256     %s (what --digest states)\n", a.Digest())
	fmt.Fprintf(&w, "  content    %s (the release's digest)\n", usertext.Show(r.Digest))
	fmt.Fprintf(&w, "  published  %s\n", usertext.Show(r.PublishedAt))
	if r.PreviousVersion != "" {
		fmt.Fprintf(&w, "  previous   %s\n", usertext.Show(r.PreviousVersion))
	}
	list := func(title string, m map[string]string) {
		fmt.Fprintf(&w, "%s (%d):\n", title, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&w, "  %s  %s\n", usertext.Show(k), usertext.Show(m[k]))
		}
	}
	list("artifacts", r.Artifacts)
	list("images", r.Images)
	list("metadata", r.Metadata)
	lines, _, _, _ := signatureStatus(a.Signatures, a.Stray, trusted, a.Key, a.Digest())
	fmt.Fprintf(&w, "signatures (%d):\n", len(lines)-len(a.Stray))
	for _, l := range lines {
		w.WriteString(usertext.Escape(l) + "\n")
	}
	_, err := io.WriteString(out, w.String())
	return err
}

// untrustedError says why a record is refused under --trusted-key.
func untrustedError(what string, err error) error {
	var ue *release.UntrustedRecordError
	if !errors.As(err, &ue) {
		return err
	}
	why := "it has no signature"
	if !ue.Unsigned {
		why = "its signatures name key IDs " + strings.Join(showAll(ue.Found), ", ")
		if len(ue.Invalid) == 0 {
			why += ", none of them given with --trusted-key"
		} else {
			why += "; those of keys given with --trusted-key, " + strings.Join(showAll(ue.Invalid), ", ") +
				", do not verify or name another record (the record or its signature was altered, or the signature was copied from another record)"
		}
		if ue.Detail != "" {
			why += " (" + usertext.Show(ue.Detail) + ")"
		}
	}
	if len(ue.Stray) > 0 {
		why += fmt.Sprintf("; the %d objects listed above as ignored are not signatures and count for nothing either way "+
			"(delete them from the store, or ignore them)", len(ue.Stray))
	}
	return fmt.Errorf("refused, nothing signed: %s (%s) carries no valid signature by a key given with --trusted-key: %s. "+
		"It may have been written by someone who can write the store but does not hold your publisher's key. "+
		"Check who wrote it; if its signer's key is one you trust, give that key with --trusted-key, "+
		"or review the record above and give its sha256 with --digest", what, ue.Key, why)
}

// showAll is usertext.Show of each of ss (key IDs as claimed by the store).
func showAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = usertext.Show(s)
	}
	return out
}

const envelopeUsage = `Usage: terraform-provider-immutable envelope --store URL RECORD [--key-id ID] [--record-out FILE [--force]]

Prints the DSSE envelopes of a signed record to stdout, one JSON document
a line (one per signing key; --key-id picks one), so that standard tools
verify them. Nothing is verified here. RECORD is:

` + targetHelp + `
--record-out writes the record's stored bytes, which the envelope's
statement is about (its first subject is their sha256), to FILE: a new
file (--force replaces one), never one inside a file:// store. With
cosign, a release version (a move's or yank entry's the same way):

  terraform-provider-immutable envelope --store URL --release web@1.4.0 \
    --key-id ID --record-out record.json > envelope.json
  cosign verify-blob-attestation --key pub.pem --signature envelope.json \
    --type https://immutable-infra.dev/record/v1 --insecure-ignore-tlog=true record.json

A build's envelope is a SLSA provenance whose subjects are the build
record and the build's output (a file by its sha256; a directory by its
tree listing's): cosign checks it against the output file the build made
(or the record --record-out wrote):

  terraform-provider-immutable envelope --store URL --action sha256:KEY \
    --key-id ID > envelope.json
  cosign verify-blob-attestation --key ci.pub --type slsaprovenance1 \
    --insecure-ignore-tlog=true --signature envelope.json out

(KEY is the immutable_build's key attribute, out its output file.)

` + storeHelp + `
Options:
`

func envelopeMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("envelope", envelopeUsage, "Reading envelopes needs s3:ListBucket and s3:GetObject on the store's prefix.", stderr)
	keyID := c.fs.String("key-id", "", "print only the envelope signed by the key with this `ID`")
	recordOut := c.fs.String("record-out", "", "write the record's stored bytes to `FILE` (the blob a verifier checks); not an existing file, and never one inside a file:// store")
	force := c.fs.Bool("force", false, "with --record-out, replace FILE if it exists")
	if code, done := c.parse(args); done {
		return code
	}
	t, err := c.address()
	if err != nil {
		return c.fail(err)
	}
	if *recordOut != "" {
		if fi, err := os.Stat(filepath.Dir(*recordOut)); err != nil || !fi.IsDir() {
			return c.fail(usagef("--record-out %s: its directory does not exist", *recordOut))
		}
		if fi, err := os.Lstat(*recordOut); err == nil && (!*force || fi.IsDir()) {
			if fi.IsDir() {
				return c.fail(usagef("--record-out %s is a directory: give the path of a file to write", *recordOut))
			}
			return c.fail(usagef("--record-out %s exists: give a new path, or --force to replace it", *recordOut))
		}
	}
	b, err := c.open(ctx)
	if err != nil {
		return c.fail(err)
	}
	if fb, ok := b.(*filestore.Backend); ok && *recordOut != "" {
		if err := outsideStore(*recordOut, fb.Root()); err != nil {
			return c.fail(err)
		}
	}
	a, _, err := t.read(ctx, b)
	if err != nil {
		return c.fail(err)
	}
	what, raw, envs := label(a), a.Stored, a.Signatures
	var found []string
	var out []*signature.Envelope
	for _, env := range envs {
		ids := make([]string, 0, len(env.Signatures))
		for _, sig := range env.Signatures {
			ids = append(ids, sig.KeyID)
		}
		found = append(found, ids...)
		if *keyID == "" || slices.Contains(ids, *keyID) {
			out = append(out, env)
		}
	}
	switch {
	case len(envs) == 0:
		return c.fail(fmt.Errorf("%s has no signatures (none stored under %s)", what, store.SignaturesPrefix(digest.Bytes(raw))))
	case len(out) == 0:
		return c.fail(fmt.Errorf("%s has no signature by key ID %s; its signatures name key IDs %s", what, usertext.Show(*keyID), strings.Join(showAll(found), ", ")))
	}
	if *recordOut != "" {
		if err := writeAtomic(*recordOut, raw, *force); err != nil {
			return c.fail(err)
		}
	}
	for _, env := range out {
		line, err := json.Marshal(env)
		if err != nil {
			return c.fail(err)
		}
		if _, err := stdout.Write(append(line, '\n')); err != nil {
			return c.fail(err)
		}
	}
	return 0
}

// outsideStore returns a usage error when path lies in root, the
// directory of a file:// store (through symbolic links too): --record-out
// writes a copy for a verifier, never into the store, whose objects are
// written once.
func outsideStore(path, root string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(realRoot, filepath.Join(dir, filepath.Base(abs)))
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usagef("--record-out %s is inside the store %s: write the record's copy outside the store (its objects are written once)", path, root)
	}
	return nil
}

// writeAtomic writes b to path through a temporary file in its directory
// and a link (or, with replace, a rename): a reader never sees half of it,
// and, without replace, a file already at path is never overwritten.
func writeAtomic(path string, b []byte, replace bool) error {
	f, err := tmpfile.Create(filepath.Dir(path), ".record-out-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	switch {
	case err != nil:
	case replace:
		err = os.Rename(f.Name(), path)
	default:
		if err = os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
			err = usagef("--record-out %s exists (written since the command started): give a new path, or --force to replace it", path)
		}
	}
	_ = os.Remove(f.Name()) // gone already after a rename; a link keeps path
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("--record-out %s: %w", path, err)
	}
	return nil
}
