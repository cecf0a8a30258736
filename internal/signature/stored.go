package signature

// Stored signatures: the one place a record's signature is written to and
// read from the store. Every writer (release versions, channel moves, yank
// entries, build action records) signs through SignRecord; every reader
// finds a record's signatures with ReadSignatures and checks each with
// VerifyRecord.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// RecordPredicateType is the predicate type of a plain record's statement
// (a release version, a channel move, a yank entry): its first subject is
// the record (its key, and the sha256 of its stored bytes), the predicate
// says which kind of record it is. A build action record's statement is a
// SLSA provenance (ProvenancePredicateType) with the same first subject.
const RecordPredicateType = "https://immutable-infra.dev/record/v1"

// RecordPredicate is the predicate of a record's statement.
type RecordPredicate struct {
	Kind string `json:"kind"`
}

// The kinds of record a RecordPredicateType statement names, one per
// family of key signed so (VerifyRecord checks the statement's kind
// against its record's key).
const (
	KindRelease = "release" // releases/<name>/versions/<version>
	KindMove    = "move"    // channels/<release>/<channel>/moves/<seq>
	KindYank    = "yank"    // releases/<name>/yanks/<version>/<seq>
)

// RecordKind is the kind a RecordPredicateType statement about the record
// at key names, or "" when no record of key's family is signed with one.
func RecordKind(key string) string {
	k, _ := store.ParseKey(key)
	switch k.Family {
	case store.FamilyVersion:
		return KindRelease
	case store.FamilyMove:
		return KindMove
	case store.FamilyYank:
		return KindYank
	}
	return ""
}

// MaxStoredSize bounds a stored signature (an envelope with a few hundred
// subjects is far below it).
const MaxStoredSize = 1 << 20

// StoredError is an object in a record's signature folder that is not a
// signature the provider can use: its name is not a key ID, it cannot be
// read, it is too large, or it is not a DSSE envelope. Readers skip it (a
// stray object hides no valid signature beside it) and name it when no
// signature passes.
type StoredError struct {
	Key    string
	Detail string
}

func (e *StoredError) Error() string {
	return fmt.Sprintf("%s is not a signature: %s", usertext.Quote(e.Key), e.Detail)
}

// SignRecord signs the record stored at key, which must hold exactly want
// (the bytes the writer wrote, or found written and read), with s: an
// in-toto statement whose first subject is the record (name key, digest
// the sha256 of want), then extra, with the predicate of predicateType;
// and stores its DSSE envelope once at store.SignatureKey. A signature by
// the same key already there is accepted only if it verifies with s's
// public key and names this record with this predicate type; otherwise the
// error says so and nothing is overwritten.
func SignRecord(ctx context.Context, b store.Backend, s *Signer, key string, want []byte, predicateType string, predicate any, extra []Subject) (*Envelope, error) {
	got, err := readLimited(ctx, b, key, int64(len(want))+1)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%s does not hold the record written (its bytes differ), so it is not signed", key)
	}
	sum := digest.Bytes(want)
	subjects := append([]Subject{{Name: key, Digest: sum}}, extra...)
	statement, err := NewStatement(subjects, predicateType, predicate)
	if err != nil {
		return nil, err
	}
	return storeSigned(ctx, b, s, key, sum, statement, predicateType)
}

// Countersign signs, with s, the statement of a signature of the record
// stored at key, which must hold exactly want: st, a statement another
// key's signature of it carries, verified by the caller (VerifyRecord),
// whose payload is signed again byte for byte, so that the new signature
// says exactly what the first one does (a build's provenance, a move's
// record: DSSE lets several keys sign one payload). It is stored once at
// store.SignatureKey, as SignRecord stores a signature. A statement that
// is not about this record (its first subject) with predicateType is
// refused, and nothing is written.
func Countersign(ctx context.Context, b store.Backend, s *Signer, key string, want []byte, st *Statement, predicateType string) (*Envelope, error) {
	got, err := readLimited(ctx, b, key, int64(len(want))+1)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%s does not hold the record checked (its bytes differ: replaced since), so it is not signed", key)
	}
	sum := digest.Bytes(want)
	if st.PredicateType() != predicateType {
		return nil, fmt.Errorf("the statement's predicate type is %q, not %q", st.PredicateType(), predicateType)
	}
	if subs := st.Subjects(); subs[0].Name != key || subs[0].Digest != sum {
		return nil, fmt.Errorf("the statement is not about %s with sha256 %s", key, sum.Hex())
	}
	return storeSigned(ctx, b, s, key, sum, st.Payload(), predicateType)
}

// storeSigned signs statement, about the record at key whose stored bytes have
// the sha256 sum, with s and stores the envelope once at
// store.SignatureKey. A signature by the same key already there is
// accepted only if it verifies with s's public key and names this record
// with this predicate type; otherwise the error says so and nothing is
// overwritten.
func storeSigned(ctx context.Context, b store.Backend, s *Signer, key string, sum digest.Sum, statement []byte, predicateType string) (*Envelope, error) {
	env, err := Sign(s, statement)
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
	existing, err := readStored(ctx, b, sigKey)
	if err != nil {
		return nil, err
	}
	if _, err := VerifyRecord(existing, []*Verifier{s.Public()}, key, sum, predicateType); err != nil {
		return nil, fmt.Errorf("%s already holds a signature that is not a valid one of %s by this key (%v): move it out of the store "+
			"and sign again", sigKey, key, err)
	}
	return existing, nil
}

// VerifyRecord checks that env is signed by one of trusted, that its
// statement has the predicate type predicateType (for RecordPredicateType,
// with the kind of key's family: RecordKind), and that it is about the
// record at key whose stored bytes have the sha256 sum (its first
// subject): a signature copied from another record, or of an earlier
// record at the same key, is refused. It returns the statement.
func VerifyRecord(env *Envelope, trusted []*Verifier, key string, sum digest.Sum, predicateType string) (*Statement, error) {
	st, _, err := Verify(env, trusted)
	if err != nil {
		return nil, err
	}
	if st.PredicateType() != predicateType {
		return nil, fmt.Errorf("its predicate type is %q, not %q", st.PredicateType(), predicateType)
	}
	if predicateType == RecordPredicateType {
		var p RecordPredicate
		if err := st.DecodePredicate(RecordPredicateType, &p); err != nil {
			return nil, err
		}
		if want := RecordKind(key); p.Kind != want {
			return nil, fmt.Errorf("its statement is about a record of kind %q, but %s is a record of kind %q", p.Kind, key, want)
		}
	}
	if subs := st.Subjects(); subs[0].Name != key || subs[0].Digest != sum {
		return nil, fmt.Errorf("its statement is not about %s with sha256 %s but about %s with sha256 %s (a signature copied or replayed from another record)",
			key, sum.Hex(), usertext.Show(subs[0].Name), subs[0].Digest.Hex())
	}
	return st, nil
}

// ReadSignatures reads the signatures of the record at recordKey whose
// stored bytes have the sha256 recordDigest, in key ID order, skipping
// whatever there is not one (see ReadStored, which returns those too).
func ReadSignatures(ctx context.Context, b store.Backend, recordKey string, recordDigest digest.Sum) ([]*Envelope, error) {
	envs, _, err := ReadStored(ctx, b, recordKey, recordDigest)
	return envs, err
}

// ReadStored reads what the signature folder of the record at recordKey,
// whose stored bytes have the sha256 recordDigest, holds: its signatures,
// in key ID order, unverified (a reader checks each with VerifyRecord
// against the keys it trusts), and the stray objects that are not
// signatures (a name that is not a key ID, an object that cannot be read,
// is larger than MaxStoredSize or is no DSSE envelope), each a
// *StoredError. A stray object hides nothing: a record passes when one of
// its signatures does (DSSE's any-of rule), whatever lies beside it. err
// is the store's failure to list the folder, or ctx's.
func ReadStored(ctx context.Context, b store.Backend, recordKey string, recordDigest digest.Sum) (envs []*Envelope, stray []*StoredError, err error) {
	keys, err := b.List(ctx, store.SignaturesPrefix(recordDigest))
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		if sk, ok := store.ParseKey(k); !ok || sk.Family != store.FamilySignature {
			stray = append(stray, &StoredError{Key: k, Detail: "its name is not a key ID (a signature is stored under its signer's key ID)"})
			continue
		}
		env, err := readStored(ctx, b, k)
		var bad *StoredError
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // deleted since it was listed (its record collected)
		case errors.As(err, &bad):
			stray = append(stray, bad)
			continue
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err != nil:
			stray = append(stray, &StoredError{Key: k, Detail: "it cannot be read: " + err.Error()})
			continue
		}
		envs = append(envs, env)
	}
	return envs, stray, nil
}

// readStored reads the envelope stored at key, a signature key: it must
// hold exactly one signature, whose keyid is the key's key-ID component
// (as SignRecord stores it). Anything else is a *StoredError, and none of
// its signatures is tried: an envelope of thousands of signatures with an
// empty keyid would each be tried against every trusted key.
func readStored(ctx context.Context, b store.Backend, key string) (*Envelope, error) {
	raw, err := readLimited(ctx, b, key, MaxStoredSize+1)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxStoredSize {
		return nil, &StoredError{Key: key, Detail: fmt.Sprintf("it is larger than %d bytes", MaxStoredSize)}
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		return nil, &StoredError{Key: key, Detail: err.Error()}
	}
	sk, _ := store.ParseKey(key)
	switch {
	case len(env.Signatures) != 1:
		return nil, &StoredError{Key: key, Detail: fmt.Sprintf("it holds %d signatures, not the one signature of key %s", len(env.Signatures), sk.KeyID)}
	case env.Signatures[0].KeyID != sk.KeyID:
		return nil, &StoredError{Key: key, Detail: fmt.Sprintf("its signature names key ID %q, not %s, the key it is stored under", env.Signatures[0].KeyID, sk.KeyID)}
	}
	return env, nil
}

func readLimited(ctx context.Context, b store.Backend, key string, n int64) ([]byte, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only
	return io.ReadAll(io.LimitReader(rc, n))
}
