package release

import (
	"bytes"
	"context"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Approval is a signed record (a published version, a channel move, a
// yank entry, a build action record) as an approver reviews it before
// countersigning (`terraform-provider-immutable sign`): its record read
// once from the store, the bytes it was decoded from, and the signatures
// it carries, unverified. The checks (CheckTrusted, CheckDigest) and Sign
// are all about exactly these bytes: a record replaced in the store after
// it was read is not signed.
type Approval struct {
	// Record, Move or Yank is the record as decoded, by its family (all
	// nil for a build action record, which package actioncache decodes).
	Record     *Record
	Move       *Move
	Yank       *Yank
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

// ReadApprovalAt reads the record at key, a release version's, a channel
// move's or a yank entry's (checked as every reader of its family checks
// it), and its signatures. A record that is not there is
// store.ErrNotFound; one that does not read back is a *TamperedError; a
// key of another family is an error saying so.
func ReadApprovalAt(ctx context.Context, b store.Backend, key string) (*Approval, error) {
	k, ok := store.ParseKey(key)
	if !ok {
		return nil, fmt.Errorf("%s is not a key of the store's layout", key)
	}
	a := &Approval{Key: key}
	switch k.Family {
	case store.FamilyVersion:
		rec, raw, err := GetStored(ctx, b, k.Release, k.Version)
		if err != nil {
			return nil, err
		}
		a.Record, a.Stored = rec, raw
	case store.FamilyMove:
		m, err := getMove(ctx, b, k.Release, k.Channel, k.Seq)
		if err != nil {
			return nil, err
		}
		a.Move, a.Stored = m, m.encode()
	case store.FamilyYank:
		y, err := getYank(ctx, b, key, k.Release, k.Version, k.Seq)
		if err != nil {
			return nil, err
		}
		a.Yank, a.Stored = y, y.encode()
	default:
		return nil, fmt.Errorf("%s is a %s key, not a release version's, a channel move's or a yank entry's", key, k.Family)
	}
	return a, a.readSignatures(ctx, b)
}

// ApprovalOf is the record at key whose stored bytes, read and checked
// by the caller (a build action record: actioncache.ParseRecord), are
// raw, with its signatures.
func ApprovalOf(ctx context.Context, b store.Backend, key string, raw []byte) (*Approval, error) {
	a := &Approval{Key: key, Stored: raw}
	return a, a.readSignatures(ctx, b)
}

func (a *Approval) readSignatures(ctx context.Context, b store.Backend) error {
	var err error
	a.Signatures, a.Stray, err = ReadStored(ctx, b, a.Key, a.Digest())
	return err
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
	_, err := a.TrustedStatement(trusted)
	return err
}

// TrustedStatement is CheckTrusted returning the statement of the first
// valid signature by a key of trusted: what a countersignature of it signs
// again (SignStatement).
func (a *Approval) TrustedStatement(trusted []*signature.Verifier) (*signature.Statement, error) {
	if err := judge(a.Signatures, a.Stray, trusted, true, a.Key, a.Digest()); err != nil {
		return nil, err
	}
	for _, env := range a.Signatures {
		if st, err := signature.VerifyRecord(env, trusted, a.Key, a.Digest(), PredicateType(a.Key)); err == nil {
			return st, nil
		}
	}
	return nil, &UntrustedRecordError{Key: a.Key} // judge passed none: not reached
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
	return &DigestMismatchError{Key: a.Key, Got: got, Want: want, ContentDigest: a.Record != nil && a.Record.Digest == want.String()}
}

// Sign countersigns the record with s, through SignRecord, with the
// statement its writer signs: for a version, the record's stored bytes
// first, then its artifacts and images (as Publish); for a move, the
// record first, then the record of the version it moves to as it is now
// (as MoveTo); for a yank entry, the record alone (as SetYank). It is
// stored once beside the record under s's key ID. The bytes signed are
// a.Stored: if the record's key holds other bytes by now, nothing is
// written and the error says so. A build action record's provenance is
// not the record's to make: it is signed through SignStatement only.
func (a *Approval) Sign(ctx context.Context, b store.Backend, s *signature.Signer) (*signature.Envelope, error) {
	kind, extra, err := a.statement(ctx, b)
	if err != nil {
		return nil, err
	}
	return SignRecord(ctx, b, s, a.Key, a.Stored, kind, extra)
}

// statement is the kind and the extra subjects of the statement Sign
// signs, written nowhere: a *TamperedError for a version whose artifacts
// or images are not digests; for a move, the store's error reading the
// record it moves to; an error for a build action record.
func (a *Approval) statement(ctx context.Context, b store.Backend) (string, []signature.Subject, error) {
	switch {
	case a.Record != nil:
		extra, err := a.Record.subjects()
		if err != nil {
			return "", nil, &TamperedError{Key: a.Key, Detail: err.Error()}
		}
		return KindRelease, extra, nil
	case a.Move != nil:
		extra, err := moveSubjects(ctx, b, a.Move)
		return KindMove, extra, err
	case a.Yank != nil:
		return KindYank, nil, nil
	}
	return "", nil, fmt.Errorf("%s: only the statement of a trusted signature of it can be signed again (its provenance)", a.Key)
}

// Check runs the checks that signing runs before it writes, writing
// nothing: those of SignStatement with st, the statement of a trusted
// signature, when st is not nil and the record is not a version's (as
// `sign` chooses), else those of Sign; and that the record's key still
// holds a.Stored. A dry run calls it, so that it refuses whatever signing
// would (an artifact that is not a digest, say).
func (a *Approval) Check(ctx context.Context, b store.Backend, st *signature.Statement) error {
	if st != nil && a.Record == nil {
		if st.PredicateType() != PredicateType(a.Key) {
			return fmt.Errorf("the statement's predicate type is %q, not %q", st.PredicateType(), PredicateType(a.Key))
		}
		if subs := st.Subjects(); subs[0].Name != a.Key || subs[0].Digest != a.Digest() {
			return fmt.Errorf("the statement is not about %s with sha256 %s", a.Key, a.Digest().Hex())
		}
	} else if _, _, err := a.statement(ctx, b); err != nil {
		return err
	}
	got, err := readLimited(ctx, b, a.Key, int64(len(a.Stored))+1)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, a.Stored) {
		return fmt.Errorf("%s does not hold the record checked (its bytes differ: replaced since), so it is not signed", a.Key)
	}
	return nil
}

// SignStatement countersigns the record with s, signing again the
// payload of st, the statement of a trusted signature of it
// (TrustedStatement), byte for byte: the countersignature says exactly
// what the trusted one does (a build's provenance, the record a move
// approved), and a verifier of either, cosign too, reads the same
// statement. Stored as Sign stores it; a.Stored must still be the
// record's bytes.
func (a *Approval) SignStatement(ctx context.Context, b store.Backend, s *signature.Signer, st *signature.Statement) (*signature.Envelope, error) {
	return signature.Countersign(ctx, b, s, a.Key, a.Stored, st, PredicateType(a.Key))
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
