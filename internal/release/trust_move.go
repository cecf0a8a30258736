package release

import (
	"context"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// MoveRecordError is a channel move whose trusted signature approved
// another record than the one its version holds now: the version's
// record was replaced after the move was signed (a record validly signed
// by another trusted key, say), so the move does not vouch for it.
type MoveRecordError struct {
	Move     string     // the move's key
	Record   string     // the version's record key
	Signed   digest.Sum // the sha256 of the record the move's signature names
	Now      digest.Sum // the sha256 of the record read now
	SignedBy string     // the key (Label) whose signature names Signed
}

func (e *MoveRecordError) Error() string {
	return fmt.Sprintf("the channel move %s was signed (by key %s) for the record %s with sha256 %s, but that record now has sha256 %s: "+
		"it was replaced after the move was approved, so the move does not vouch for it. Restore the record the move approved, "+
		"or, if the record as it is now is meant, apply the configuration managing the channel (immutable_channel): its plan "+
		"writes a move after this one that approves it", e.Move, e.SignedBy, e.Record, e.Signed.Hex(), e.Now.Hex())
}

// CheckMoveRecord checks m, a channel move read by History or Current,
// as CheckMove does, and that it approved r, the record its version holds
// now (read by Get): a trusted key's valid signature of m whose statement
// names the version's record (the subject releases/<name>/versions/<v>,
// which MoveTo's signer adds) must name r's stored bytes; naming another
// record is a *MoveRecordError. A move whose signatures name no record
// (signed before moves named it) is judged by CheckMove alone. It reads
// nothing CheckMove does not: the move's signatures are read once per
// Trust.
func (t *Trust) CheckMoveRecord(ctx context.Context, b store.Backend, m *Move, r *Record) error {
	if !t.Enabled() {
		return nil
	}
	key, sum := moveKey(m.Release, m.Channel, m.Seq), digest.Bytes(m.encode())
	envs, err := t.result(ctx, b, key, sum)
	if err != nil {
		return err
	}
	recordKey := VersionKey(m.Release, m.To)
	trusted := t.trusted()
	for _, env := range envs {
		st, err := signature.VerifyRecord(env, trusted, key, sum, RecordPredicateType)
		if err != nil {
			continue // not a trusted key's valid signature: it vouches for nothing
		}
		for _, s := range st.Subjects()[1:] {
			if s.Name == recordKey && s.Digest != r.StoredDigest() {
				_, ids, _ := signature.Verify(env, trusted)
				return &MoveRecordError{Move: key, Record: recordKey, Signed: s.Digest, Now: r.StoredDigest(), SignedBy: firstLabel(ids, trusted)}
			}
		}
	}
	return nil
}

// firstLabel is the Label of the first of ids.
func firstLabel(ids []string, trusted []*signature.Verifier) string {
	if len(ids) == 0 {
		return "?"
	}
	return labels(ids[:1], trusted)[0]
}
