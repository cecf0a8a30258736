package signcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

const signUsage = `Usage: terraform-provider-immutable sign --store URL --release NAME@VERSION --key FILE

Countersigns a published release version (an approval, such as a release
manager's): signs the record's stored bytes, its artifacts and images as
the publisher's signature does, and stores the DSSE envelope once beside
the record under the key's ID. A version that is not published is
refused. Signing again with the same key changes nothing.

The key is an unencrypted PKCS#8 PEM private key, Ed25519 or ECDSA P-256:
  openssl genpkey -algorithm ed25519 -out key.pem
  openssl pkey -in key.pem -pubout -out pub.pem   # for --trusted-key

` + storeHelp + `A signer needs s3:GetObject and s3:ListBucket, and s3:PutObject on the
signatures only.

Options:
`

func signMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("sign", signUsage, "Signing needs s3:ListBucket and s3:GetObject on the store's prefix, and s3:PutObject on its signatures.", stderr)
	keyFile := c.fs.String("key", "", "the signing key: a PKCS#8 PEM private key `FILE`")
	if code, done := c.parse(args); done {
		return code
	}
	name, version, err := c.nameVersion(true)
	if err != nil {
		return c.fail(err)
	}
	if *keyFile == "" {
		return c.fail(usagef("no key: give --key FILE (a PKCS#8 PEM private key)"))
	}
	pem, err := readFile("--key", *keyFile)
	if err != nil {
		return c.fail(err)
	}
	s, err := signature.LoadSigner(pem)
	if err != nil {
		return c.fail(usagef("--key %s: %v", *keyFile, err))
	}
	b, err := c.open(ctx)
	if err != nil {
		return c.fail(err)
	}
	if _, err := release.Countersign(ctx, b, s, name, version); err != nil {
		return c.fail(recordError(name, version, err))
	}
	if _, err := fmt.Fprintf(stdout, "%s@%s signed by key ID %s\n", name, version, s.KeyID()); err != nil {
		return c.fail(err)
	}
	return 0
}

const envelopeUsage = `Usage: terraform-provider-immutable envelope --store URL --release NAME@VERSION [--key-id ID] [--record-out FILE]

Prints the DSSE envelopes of a release version's record to stdout, one
JSON document a line (one per signing key; --key-id picks one), so that
standard tools verify them. Nothing is verified here. --record-out writes
the record's stored bytes, which the envelope's statement is about (its
first subject is their sha256), to FILE. With cosign:

  terraform-provider-immutable envelope --store URL --release web@1.4.0 \
    --key-id ID --record-out record.json > envelope.json
  cosign verify-blob-attestation --key pub.pem --signature envelope.json \
    --type https://immutable-infra.dev/record/v1 --insecure-ignore-tlog=true record.json

` + storeHelp + `
Options:
`

func envelopeMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("envelope", envelopeUsage, "Reading envelopes needs s3:ListBucket and s3:GetObject on the store's prefix.", stderr)
	keyID := c.fs.String("key-id", "", "print only the envelope signed by the key with this `ID`")
	recordOut := c.fs.String("record-out", "", "write the record's stored bytes to `FILE` (the blob a verifier checks)")
	if code, done := c.parse(args); done {
		return code
	}
	name, version, err := c.nameVersion(true)
	if err != nil {
		return c.fail(err)
	}
	if *recordOut != "" {
		if fi, err := os.Stat(filepath.Dir(*recordOut)); err != nil || !fi.IsDir() {
			return c.fail(usagef("--record-out %s: its directory does not exist", *recordOut))
		}
	}
	b, err := c.open(ctx)
	if err != nil {
		return c.fail(err)
	}
	_, raw, err := release.GetStored(ctx, b, name, version)
	if err != nil {
		return c.fail(recordError(name, version, err))
	}
	key := release.VersionKey(name, version)
	envs, err := release.ReadSignatures(ctx, b, key, digest.Bytes(raw))
	if err != nil {
		return c.fail(err)
	}
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
		return c.fail(fmt.Errorf("%s@%s has no signatures (none stored under %s)", name, version, store.SignaturesPrefix(digest.Bytes(raw))))
	case len(out) == 0:
		return c.fail(fmt.Errorf("%s@%s has no signature by key ID %s; its signatures name key IDs %s", name, version, *keyID, strings.Join(found, ", ")))
	}
	if *recordOut != "" {
		if err := writeAtomic(*recordOut, raw); err != nil {
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

// writeAtomic writes b to path through a temporary file in its directory
// and a rename: a reader never sees half of it.
func writeAtomic(path string, b []byte) error {
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
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name()) // best effort: the write already failed
		return fmt.Errorf("--record-out %s: %w", path, err)
	}
	return nil
}
