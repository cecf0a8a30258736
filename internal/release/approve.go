package release

import (
	"context"

	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Countersign signs the published version name@version with s, as an
// approval (`terraform-provider-immutable sign`): through SignRecord, with
// the statement Publish signs (the record's stored bytes first, then its
// artifacts and images), stored once beside the record under s's key ID.
// A version that is not published is store.ErrNotFound and nothing is
// written; a record that does not read back is a *TamperedError.
func Countersign(ctx context.Context, b store.Backend, s *signature.Signer, name, version string) (*signature.Envelope, error) {
	rec, raw, err := GetStored(ctx, b, name, version)
	if err != nil {
		return nil, err
	}
	extra, err := rec.subjects()
	if err != nil {
		return nil, &TamperedError{Key: VersionKey(name, version), Detail: err.Error()}
	}
	return SignRecord(ctx, b, s, VersionKey(name, version), raw, KindRelease, extra)
}

// Stored is the move's stored bytes, which its signatures are about: a
// move read from the store (Current, History) was checked to be stored in
// exactly this canonical form.
func (m *Move) Stored() []byte { return m.encode() }
