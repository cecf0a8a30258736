package artifact

import (
	"context"
	"errors"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Stored describes the artifact stored under sum, of kind store.Tree or
// store.Blob (as st.Lookup found it): its listing, size and count, read
// back from the store. A tree's listing is verified as it is read, and
// with verifyFiles every blob it names is re-read and re-hashed too; a
// blob is re-read and re-hashed. immutable_artifact fills an import with
// it, data.immutable_artifact describes what it checks.
//
// A listing that cannot be read is a *ListingUnreadableError (with
// verifyFiles, a *DamagedError: the data source reports either as damage);
// content that fails verification is a *DamagedError.
func (s *Sources) Stored(ctx context.Context, sum digest.Sum, kind store.Kind, verifyFiles bool) (*Content, error) {
	c := &Content{Sum: sum, Count: 1}
	if kind != store.Tree {
		size, err := s.st.VerifyBlob(ctx, sum) // one read: verified and counted
		if err != nil {
			return nil, &DamagedError{Sum: sum, Err: err}
		}
		c.Size = size
		return c, nil
	}
	man, err := s.st.GetListing(ctx, sum) // the listing is verified as it is read
	if err != nil {
		if verifyFiles {
			return nil, &DamagedError{Sum: sum, Err: err}
		}
		return nil, &ListingUnreadableError{Sum: sum, Err: err}
	}
	if verifyFiles {
		if err := s.st.VerifyTree(ctx, sum, man); err != nil {
			return nil, &DamagedError{Sum: sum, Err: err}
		}
	}
	c.Tree, c.Count, c.Size = man, int64(len(man.Entries)), man.Size()
	return c, nil
}

// VerifyArchive checks, at refresh (verify_on_refresh), an artifact's
// stored archive in format: that the listing it was built from is stored
// (else an *ArchiveListingError), that the archive is intact and holds
// exactly that listing (else the error of archive.Refs.Verify: an
// *archive.CorruptError, a *store.MismatchError, ...), and that the
// store's reference for the listing still names it (else an
// *ArchiveRefChangedError, or an *ArchiveRefUnreadableError when it
// cannot be read; a reference not written yet is fine).
//
// sum is the archive's sha256; nil when the state holds none that parses:
// then only the listing is read.
func (s *Sources) VerifyArchive(ctx context.Context, format archive.Format, listing digest.Sum, sum *digest.Sum) error {
	man, err := s.st.GetListing(ctx, listing)
	if err != nil {
		return &ArchiveListingError{Listing: listing, Err: err}
	}
	if sum == nil {
		return nil
	}
	if err := s.refs.Verify(ctx, format, man, *sum); err != nil {
		return err
	}
	// The reference must still name this archive: references are written once.
	switch ref, err := s.st.GetArchiveRef(ctx, archive.Version(format), listing); {
	case err == nil && ref != *sum:
		return &ArchiveRefChangedError{Key: store.ArchiveKey(archive.Version(format), listing), Ref: ref, Archive: *sum}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return &ArchiveRefUnreadableError{Err: err}
	}
	return nil
}

// ListingUnreadableError is a stored tree whose listing could not be read.
type ListingUnreadableError struct {
	Sum digest.Sum
	Err error
}

func (e *ListingUnreadableError) Error() string {
	return fmt.Sprintf("reading the listing %s: %v", e.Sum, e.Err)
}
func (e *ListingUnreadableError) Unwrap() error { return e.Err }

// DamagedError is stored content that failed verification.
type DamagedError struct {
	Sum digest.Sum
	Err error
}

func (e *DamagedError) Error() string { return fmt.Sprintf("verifying %s: %v", e.Sum, e.Err) }
func (e *DamagedError) Unwrap() error { return e.Err }

// ArchiveListingError is an archive whose listing could not be read back.
type ArchiveListingError struct {
	Listing digest.Sum
	Err     error
}

func (e *ArchiveListingError) Error() string {
	return fmt.Sprintf("the listing %s of the archive: %v", e.Listing, e.Err)
}
func (e *ArchiveListingError) Unwrap() error { return e.Err }

// ArchiveRefChangedError is an archive reference (written once) that now
// names another archive than the one that still verifies.
type ArchiveRefChangedError struct {
	Key     string // the reference's key
	Ref     digest.Sum
	Archive digest.Sum
}

func (e *ArchiveRefChangedError) Error() string {
	return fmt.Sprintf("the archive reference %s names %s, not %s", e.Key, e.Ref, e.Archive)
}

// ArchiveRefUnreadableError is an archive reference that could not be
// read.
type ArchiveRefUnreadableError struct{ Err error }

func (e *ArchiveRefUnreadableError) Error() string {
	return fmt.Sprintf("reading the archive reference: %v", e.Err)
}
func (e *ArchiveRefUnreadableError) Unwrap() error { return e.Err }
