package gc

// Signatures: a signature (store.FamilySignature) is kept while the record
// it signs stays, and is garbage once the record is gone or going.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// maxSignatureSize bounds what is read of a signature (as
// release.MaxSignatureSize), and maxSignedRecordSize of the record it
// names (release.MaxRecordSize).
const (
	maxSignatureSize    = 1 << 20
	maxSignedRecordSize = 16 << 20
)

// markSignatures adds to kept every signature whose record stays: a
// release version kept, a build record kept, any channel move or yank
// entry (never deleted) — the record its statement names first, and whose
// stored bytes hash to the digest its key names. A young one (within the
// grace period) is a root already. Anything else is garbage: a signature
// of a record collected now or before, of a record rewritten since (a
// build record deleted and written again), or one that names no record.
//
// The signature is not verified: the collector decides only what stays,
// and what is kept is what a writer wrote for a record that is there. Its
// record is read to check the digest (two reads per signature of a record
// that stays; none for the others).
func (c *collector) markSignatures(ctx context.Context, kept map[string]bool) error {
	var sigs []string
	for k := range c.all {
		if key, ok := store.ParseKey(k); ok && key.Family == store.FamilySignature && !kept[k] {
			sigs = append(sigs, k)
		}
	}
	// Read Concurrency() at once; kept is only read meanwhile.
	keep := make([]bool, len(sigs))
	err := store.ForEach(ctx, c.st.Concurrency(), len(sigs), func(ctx context.Context, i int) error {
		var err error
		keep[i], err = c.signatureKept(ctx, kept, sigs[i])
		return err
	})
	if err != nil {
		return err
	}
	for i, k := range sigs {
		if keep[i] {
			kept[k] = true
		}
	}
	return nil
}

// signatureKept reports whether the signature at k stays (see
// markSignatures).
func (c *collector) signatureKept(ctx context.Context, kept map[string]bool, k string) (bool, error) {
	key, _ := store.ParseKey(k)
	record, err := c.signedRecord(ctx, k)
	if errors.Is(err, store.ErrNotFound) || err == nil && record == "" {
		return false, nil // gone since it was listed, or names no record: garbage
	}
	if err != nil {
		return false, err
	}
	rk, ok := store.ParseKey(record)
	switch {
	case !ok || !c.exists(record):
		return false, nil
	case rk.Family == store.FamilyMove || rk.Family == store.FamilyYank:
	case rk.Family == store.FamilyVersion || rk.Family == store.FamilyAction:
		if !kept[record] {
			return false, nil
		}
	default:
		return false, nil
	}
	sum, err := c.recordSum(ctx, record)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // gone since it was listed (collected by another run)
	}
	if err != nil {
		return false, err
	}
	return sum == key.Digest, nil
}

// signedRecord reads the key of the record the signature at k is about:
// the name of its statement's first subject ("" for none).
func (c *collector) signedRecord(ctx context.Context, k string) (string, error) {
	raw, err := c.readLimited(ctx, k, maxSignatureSize)
	if err != nil {
		return "", err
	}
	return subjectName(raw), nil
}

// subjectName is the name of the first subject of the statement in the
// DSSE envelope raw, "" when raw is no such envelope.
func subjectName(raw []byte) string {
	var env struct {
		Payload string `json:"payload"`
	}
	var st struct {
		Subject []struct {
			Name string `json:"name"`
		} `json:"subject"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return ""
	}
	body, err := decodePayload(env.Payload)
	if err != nil || json.Unmarshal(body, &st) != nil || len(st.Subject) == 0 {
		return ""
	}
	return st.Subject[0].Name
}

// recordSum is the sha256 of the bytes stored at k.
func (c *collector) recordSum(ctx context.Context, k string) (digest.Sum, error) {
	raw, err := c.readLimited(ctx, k, maxSignedRecordSize)
	if err != nil {
		return digest.Sum{}, err
	}
	return digest.Bytes(raw), nil
}

func (c *collector) readLimited(ctx context.Context, k string, n int64) ([]byte, error) {
	rc, err := c.b.Open(ctx, k)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only
	return io.ReadAll(io.LimitReader(rc, n))
}

// decodePayload reads a DSSE payload as verifiers do (go-securesystemslib's
// DecodeB64Payload): standard base64, else URL-safe, padded or not. Read
// more narrowly, a valid envelope from another tool would seem to name no
// record and be collected while its record is kept.
func decodePayload(p string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(p); err == nil {
			return b, nil
		}
	}
	return nil, err
}
