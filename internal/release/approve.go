package release

import (
	"context"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Approval is a published version as an approver reviews it before
// countersigning (`terraform-provider-immutable sign`): its record read
// once from the store, the bytes it was decoded from, and the signatures
// it carries, unverified. The checks (CheckTrusted, CheckDigest) and Sign
// are all about exactly these bytes: a record replaced in the store after
// it was read is not signed.
type Approval struct {
	Record     *Record
	Key        string                // the record's key
	Stored     []byte                // the record's stored bytes, which a signature covers
	Signatures []*signature.Envelope // the record's signatures, in key ID order, unverified
	// Stray are the objects among its signatures that are not signatures
	// (see ReadStored): ignored, and named when none passes.
	Stray []*signature.StoredError
}

// ReadApproval reads the published version name@version and its
// signatures. A version that is not published is store.ErrNotFound; a
// record that does not read back is a *TamperedError; an object among its
// signatures that is not one is in Stray.
func ReadApproval(ctx context.Context, b store.Backend, name, version string) (*Approval, error) {
	rec, raw, err := GetStored(ctx, b, name, version)
	if err != nil {
		return nil, err
	}
	key := VersionKey(name, version)
	envs, stray, err := ReadStored(ctx, b, key, digest.Bytes(raw))
	if err != nil {
		return nil, err
	}
	return &Approval{Record: rec, Key: key, Stored: raw, Signatures: envs, Stray: stray}, nil
}

// Digest is the sha256 of the record's stored bytes: what its signatures
// name, and what an approver states with `sign --digest`.
func (a *Approval) Digest() digest.Sum { return digest.Bytes(a.Stored) }

// CheckTrusted returns nil when one of the record's signatures is a valid
// one by a key of trusted about exactly this record (its key and the
// sha256 of its stored bytes, with RecordPredicateType), as Trust.Check
// with Require decides; otherwise an *UntrustedRecordError naming the key
// IDs found. A record forged by a writer of the bucket without a trusted
// key (unsigned, signed by another key, or carrying a signature of
// another record) is refused.
func (a *Approval) CheckTrusted(trusted []*signature.Verifier) error {
	return judge(a.Signatures, a.Stray, trusted, true, a.Key, a.Digest())
}

// DigestMismatchError is a record whose stored bytes are not the ones the
// approver reviewed.
type DigestMismatchError struct {
	Key           string
	Got, Want     digest.Sum
	ContentDigest bool // Want is the record's content digest (its "digest" field), not its sha256
}

func (e *DigestMismatchError) Error() string {
	if e.ContentDigest {
		return fmt.Sprintf("%s is the release's content digest (the record's \"digest\" field), not the sha256 of the record %s: "+
			"--digest takes the record's sha256, %s, which covers its metadata, previous version and publication time too; "+
			"check that it is the record you reviewed and give that", e.Want, e.Key, e.Got)
	}
	return fmt.Sprintf("the record %s has sha256 %s, not the %s you reviewed: it is another record than the one you reviewed "+
		"(replaced in the store, or a digest of another version); review it again", e.Key, e.Got, e.Want)
}

// CheckDigest returns nil when the record's stored bytes have the sha256
// want, else a *DigestMismatchError.
func (a *Approval) CheckDigest(want digest.Sum) error {
	got := a.Digest()
	if got == want {
		return nil
	}
	return &DigestMismatchError{Key: a.Key, Got: got, Want: want, ContentDigest: a.Record.Digest == want.String()}
}

// Sign countersigns the record with s, through SignRecord, with the
// statement Publish signs (the record's stored bytes first, then its
// artifacts and images), stored once beside the record under s's key ID.
// The bytes signed are a.Stored: if the record's key holds other bytes by
// now, nothing is written and the error says so.
func (a *Approval) Sign(ctx context.Context, b store.Backend, s *signature.Signer) (*signature.Envelope, error) {
	extra, err := a.Record.subjects()
	if err != nil {
		return nil, &TamperedError{Key: a.Key, Detail: err.Error()}
	}
	return SignRecord(ctx, b, s, a.Key, a.Stored, KindRelease, extra)
}

// Countersign signs the published version name@version with s, checking
// nothing about who published it (a test's or a publisher's signature);
// an approval checks first: ReadApproval, then CheckTrusted or
// CheckDigest, then Approval.Sign. A version that is not published is
// store.ErrNotFound and nothing is written; a record that does not read
// back is a *TamperedError.
func Countersign(ctx context.Context, b store.Backend, s *signature.Signer, name, version string) (*signature.Envelope, error) {
	rec, raw, err := GetStored(ctx, b, name, version)
	if err != nil {
		return nil, err
	}
	a := &Approval{Record: rec, Key: VersionKey(name, version), Stored: raw}
	return a.Sign(ctx, b, s)
}

// Stored is the move's stored bytes, which its signatures are about: a
// move read from the store (Current, History) was checked to be stored in
// exactly this canonical form.
func (m *Move) Stored() []byte { return m.encode() }
