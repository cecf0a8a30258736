package release

// Signing: every record a writer of this package writes (a release
// version, a channel move, a yank entry) is signed through SignRecord when
// the caller passes a signer (SignWith), and every reader finds a record's
// signatures through ReadSignatures.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// RecordPredicateType is the predicate type of a record's statement: its
// first subject is the record (its key, and the sha256 of its stored
// bytes), the predicate says which kind of record it is.
const RecordPredicateType = signature.RecordPredicateType

// The kinds of record a statement names (RecordPredicate.Kind).
const (
	KindRelease = signature.KindRelease // a release version's record
	KindMove    = signature.KindMove    // a channel move
	KindYank    = signature.KindYank    // a yank entry
	KindAction  = "action"              // a build step's action record (package actioncache)
)

// RecordPredicate is the predicate of a record's statement.
type RecordPredicate = signature.RecordPredicate

// MaxSignatureSize bounds a stored signature.
const MaxSignatureSize = signature.MaxStoredSize

// SignWith signs the record the operation writes (or finds already
// written: an earlier apply's) with s, after it is written: see
// SignRecord. A nil s signs nothing.
func SignWith(s *signature.Signer) Option {
	return func(o *options) { o.signer = s }
}

// SignatureError is a record that was written but could not be signed:
// the record stands (write-once), and signing it again (the same
// operation run again) is safe.
type SignatureError struct {
	Key string
	Err error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("%s was written but not signed: %v", e.Key, e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// SignRecord signs the record stored at key, which must hold exactly
// want, with s: a statement whose first subject is the record, then
// extra, with a RecordPredicate of kind, stored once at
// store.SignatureKey. See signature.SignRecord, which does the work.
func SignRecord(ctx context.Context, b store.Backend, s *signature.Signer, key string, want []byte, kind string, extra []signature.Subject) (*signature.Envelope, error) {
	return signature.SignRecord(ctx, b, s, key, want, RecordPredicateType, RecordPredicate{Kind: kind}, extra)
}

// VerifySignature checks that env is signed by one of trusted and that its
// statement is one of key's family (PredicateType: a SLSA provenance for a
// build action record, else RecordPredicateType) about the record at key whose
// stored bytes have the sha256 sum (its first subject): a signature copied
// from another record, or of an earlier record at the same key, is
// refused. See signature.VerifyRecord.
func VerifySignature(env *signature.Envelope, trusted []*signature.Verifier, key string, sum digest.Sum) error {
	_, err := signature.VerifyRecord(env, trusted, key, sum, PredicateType(key))
	return err
}

// ReadSignatures reads the signatures of the record at recordKey whose
// stored bytes have the sha256 recordDigest, in key ID order, unverified,
// skipping stray objects that are not signatures (see ReadStored).
func ReadSignatures(ctx context.Context, b store.Backend, recordKey string, recordDigest digest.Sum) ([]*signature.Envelope, error) {
	return signature.ReadSignatures(ctx, b, recordKey, recordDigest)
}

// ReadStored reads the signatures of the record at recordKey whose stored
// bytes have the sha256 recordDigest, unverified, and the stray objects
// beside them that are not signatures (see signature.ReadStored): a stray
// object never hides a valid signature.
func ReadStored(ctx context.Context, b store.Backend, recordKey string, recordDigest digest.Sum) ([]*signature.Envelope, []*signature.StoredError, error) {
	return signature.ReadStored(ctx, b, recordKey, recordDigest)
}

// sign signs the record at key with the operation's signer, if any.
func (o options) sign(ctx context.Context, b store.Backend, key string, body []byte, kind string, extra []signature.Subject) error {
	if o.signer == nil {
		return nil
	}
	if _, err := SignRecord(ctx, b, o.signer, key, body, kind, extra); err != nil {
		return &SignatureError{Key: key, Err: err}
	}
	return nil
}

// ForeignRecordError is a record an operation found already written (its
// version, its next channel move, its yank state) that is not what the
// operation would have written: someone else wrote it. The operation
// signs only what it wrote, or found exactly as it would have written it
// (an earlier attempt of the same operation that stopped before signing
// or before its state was saved; see signFound); so it did not sign this
// one, and wrote nothing.
type ForeignRecordError struct {
	Key    string
	Detail string     // how it differs from what the operation would write
	Digest digest.Sum // the sha256 of its stored bytes, what an approval states
}

func (e *ForeignRecordError) Error() string {
	// Approved by the digest reviewed: no key the approver trusts signed it.
	approve := strings.Replace(SignCommand(e.Key), "--trusted-key SIGNER.pub", "--digest "+e.Digest.String(), 1)
	return fmt.Sprintf("%s was already in the store, but not as this operation would have written it (%s): someone else wrote it, "+
		"so it was not signed with this signing key, which signs only what its writer wrote; nothing was written, and applying "+
		"again finds the same record. Review the record (`%s --dry-run` prints it): if it is right, have a holder of a trusted "+
		"key approve it (`%s`); otherwise remove it from the store and find out who wrote it",
		e.Key, e.Detail, approve, approve)
}

// The window in which a found record's time is one an earlier attempt of
// the same operation may have written (recent): an apply retried within
// a day, on machines whose clocks disagree by a few minutes at most.
const (
	foundMaxAge  = 24 * time.Hour
	foundMaxSkew = 5 * time.Minute
)

// recent says how at, the time (field, RFC 3339) of a record found
// written, is not a time an earlier attempt of this operation, running at
// now, could have written: "" when it is no more than foundMaxAge before
// now and no more than foundMaxSkew after. Whoever pre-writes a record
// the operation would adopt chooses its time: only a recent one is
// taken, so no signer's key vouches for a backdated (or future) record.
// Apply-time only: it reads the caller's clock.
func recent(field, at string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, at)
	switch {
	case err != nil:
		return fmt.Sprintf("its %s %q is not an RFC 3339 time", field, at)
	case t.Before(now.Add(-foundMaxAge)):
		return fmt.Sprintf("its %s is %s, more than 24 hours before this apply's %s, so it was not written by an earlier attempt of this apply",
			field, at, now.UTC().Format(time.RFC3339))
	case t.After(now.Add(foundMaxSkew)):
		return fmt.Sprintf("its %s is %s, more than 5 minutes after this apply's %s, so it was not written by an earlier attempt of this apply",
			field, at, now.UTC().Format(time.RFC3339))
	}
	return ""
}

// signFound signs a record the operation found already written rather
// than wrote (kind and extra as sign's). differs is "" when the record is
// exactly what the operation would have written in every field but its
// time, and that time is recent (see recent, which callers check): then
// it is signed as if written now. Only a recent time is accepted: a retry
// of the same operation (an apply whose earlier attempt wrote the record
// and failed before signing it or saving its state) writes another time
// and cannot tell its earlier attempt's from another writer's, but an
// earlier attempt ran shortly before. The stored bytes must be body,
// byte for byte (this provider's layout). Otherwise (differs says how)
// the record is not signed: nil when it already carries this key's valid
// signature (signing it would add nothing), else a *ForeignRecordError.
func (o options) signFound(ctx context.Context, b store.Backend, key string, body []byte, kind string, extra []signature.Subject, differs string) error {
	if o.signer == nil {
		return nil
	}
	raw, err := readLimited(ctx, b, key, MaxRecordSize+1)
	if err != nil {
		return &SignatureError{Key: key, Err: err}
	}
	if differs == "" && !bytes.Equal(raw, body) {
		differs = "its bytes are not laid out as this provider writes them"
	}
	if differs == "" {
		return o.sign(ctx, b, key, body, kind, extra)
	}
	sum := digest.Bytes(raw)
	envs, err := ReadSignatures(ctx, b, key, sum) // stray objects beside them skipped
	if err != nil {
		return &SignatureError{Key: key, Err: err}
	}
	for _, env := range envs {
		if VerifySignature(env, []*signature.Verifier{o.signer.Public()}, key, sum) == nil {
			return nil
		}
	}
	return &ForeignRecordError{Key: key, Detail: differs, Digest: sum}
}

// readLimited reads at most n bytes of the object at key.
func readLimited(ctx context.Context, b store.Backend, key string, n int64) ([]byte, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only
	return io.ReadAll(io.LimitReader(rc, n))
}

// subjects are a release record's artifacts and images, as the extra
// subjects of its statement: "artifacts/<name>" with the artifact's
// digest (its listing's or its file's), "images/<name>" with its
// manifest's.
func (r *Record) subjects() ([]signature.Subject, error) {
	var out []signature.Subject
	for _, k := range slices.Sorted(maps.Keys(r.Artifacts)) {
		sum, err := digest.Parse(r.Artifacts[k])
		if err != nil {
			return nil, err
		}
		out = append(out, signature.Subject{Name: "artifacts/" + k, Digest: sum})
	}
	for _, k := range slices.Sorted(maps.Keys(r.Images)) {
		sum, err := ImageDigest(r.Images[k])
		if err != nil {
			return nil, err
		}
		out = append(out, signature.Subject{Name: "images/" + k, Digest: sum})
	}
	return out, nil
}
