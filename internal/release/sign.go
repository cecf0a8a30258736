package release

// Signing: every record a writer of this package writes (a release
// version, a channel move, a yank entry) is signed through SignRecord when
// the caller passes a signer (SignWith), and every reader finds a record's
// signatures through ReadSignatures.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// RecordPredicateType is the predicate type of a record's statement: its
// first subject is the record (its key, and the sha256 of its stored
// bytes), the predicate says which kind of record it is.
const RecordPredicateType = "https://immutable-infra.dev/record/v1"

// The kinds of record a statement names (RecordPredicate.Kind).
const (
	KindRelease = "release" // a release version's record
	KindMove    = "move"    // a channel move
	KindYank    = "yank"    // a yank entry
	KindAction  = "action"  // a build step's action record (package actioncache)
)

// RecordPredicate is the predicate of a record's statement.
type RecordPredicate struct {
	Kind string `json:"kind"`
}

// MaxSignatureSize bounds a stored signature (an envelope with a few
// hundred subjects is far below it).
const MaxSignatureSize = 1 << 20

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
// want (the bytes the writer wrote, or found written and read), with s:
// an in-toto statement whose first subject is the record (name key,
// digest the sha256 of want), then extra, with a RecordPredicate of kind;
// and stores its DSSE envelope once at store.SignatureKey. A signature by
// the same key already there is accepted only if it verifies with s's
// public key and names this record; otherwise the error says so and
// nothing is overwritten.
func SignRecord(ctx context.Context, b store.Backend, s *signature.Signer, key string, want []byte, kind string, extra []signature.Subject) (*signature.Envelope, error) {
	got, err := readLimited(ctx, b, key, int64(len(want))+1)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%s does not hold the record written (its bytes differ), so it is not signed", key)
	}
	sum := digest.Bytes(want)
	subjects := append([]signature.Subject{{Name: key, Digest: sum}}, extra...)
	statement, err := signature.NewStatement(subjects, RecordPredicateType, RecordPredicate{Kind: kind})
	if err != nil {
		return nil, err
	}
	env, err := signature.Sign(s, statement)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	sigKey := store.SignatureKey(sum, s.KeyID())
	err = b.Create(ctx, sigKey, bytes.NewReader(body))
	if !errors.Is(err, store.ErrExists) {
		return env, err
	}
	// Signed before (an earlier apply): kept if it is a valid signature
	// of this record by this key.
	existing, err := readSignature(ctx, b, sigKey)
	if err != nil {
		return nil, err
	}
	if err := VerifySignature(existing, []*signature.Verifier{s.Public()}, key, sum); err != nil {
		return nil, fmt.Errorf("%s already holds a signature that is not a valid one of %s by this key (%v): move it out of the store "+
			"and sign again", sigKey, key, err)
	}
	return existing, nil
}

// VerifySignature checks that env is signed by one of trusted and that its
// statement is about the record at key whose stored bytes have the sha256
// sum (its first subject): a signature copied from another record, or of
// an earlier record at the same key, is refused.
func VerifySignature(env *signature.Envelope, trusted []*signature.Verifier, key string, sum digest.Sum) error {
	st, ids, err := signature.Verify(env, trusted)
	if err != nil {
		return fmt.Errorf("%w (key IDs found: %v)", err, ids)
	}
	if st.PredicateType() != RecordPredicateType {
		return fmt.Errorf("its predicate type is %q, not %q", st.PredicateType(), RecordPredicateType)
	}
	if subs := st.Subjects(); len(subs) == 0 || subs[0].Name != key || subs[0].Digest != sum {
		return fmt.Errorf("its statement is not about %s with sha256 %s", key, sum.Hex())
	}
	return nil
}

// ReadSignatures reads the signatures of the record at recordKey whose
// stored bytes have the sha256 recordDigest, in key ID order. They are
// not verified: a reader checks each with VerifySignature against the
// keys it trusts.
func ReadSignatures(ctx context.Context, b store.Backend, recordKey string, recordDigest digest.Sum) ([]*signature.Envelope, error) {
	keys, err := b.List(ctx, store.SignaturesPrefix(recordDigest))
	if err != nil {
		return nil, err
	}
	var envs []*signature.Envelope
	for _, k := range keys {
		if sk, ok := store.ParseKey(k); !ok || sk.Family != store.FamilySignature {
			return nil, &TamperedError{Key: k, Detail: fmt.Sprintf("it is not a signature of %s the provider wrote", recordKey)}
		}
		env, err := readSignature(ctx, b, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since it was listed (its record collected)
		}
		if err != nil {
			return nil, err
		}
		envs = append(envs, env)
	}
	return envs, nil
}

// readSignature reads the envelope stored at key.
func readSignature(ctx context.Context, b store.Backend, key string) (*signature.Envelope, error) {
	raw, err := readLimited(ctx, b, key, MaxSignatureSize+1)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxSignatureSize {
		return nil, &TamperedError{Key: key, Detail: fmt.Sprintf("it is larger than %d bytes", MaxSignatureSize)}
	}
	var env signature.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, &TamperedError{Key: key, Detail: "it is not a DSSE envelope: " + err.Error()}
	}
	return &env, nil
}

func readLimited(ctx context.Context, b store.Backend, key string, n int64) ([]byte, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only
	return io.ReadAll(io.LimitReader(rc, n))
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
