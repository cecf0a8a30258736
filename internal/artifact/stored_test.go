package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// overwrite replaces a stored object behind the store's back.
func overwrite(t *testing.T, st *store.Store, key, content string) {
	t.Helper()
	p := filepath.Join(st.LocalRoot(), filepath.FromSlash(key))
	must(t, os.Chmod(p, 0o644))
	must(t, os.WriteFile(p, []byte(content), 0o444))
}

// TestStored: what an import and the data source read back is the
// content that was stored, and damage is told from an unreadable listing.
func TestStored(t *testing.T) {
	ctx := context.Background()
	s, st := newSources(t, filepath.Join(t.TempDir(), "store"))
	src := t.TempDir()
	write(t, src, map[string]string{"a.txt": "alpha", "bin/run*": "#!/bin/sh\n"})
	put, _, err := s.Put(ctx, Source{Path: src}, nil)
	must(t, err)

	for _, verify := range []bool{false, true} {
		c, err := s.Stored(ctx, put.Sum, store.Tree, verify)
		must(t, err)
		if c.Sum != put.Sum || c.Count != 2 || c.Size != put.Size || c.Tree == nil || c.Tree.Digest() != put.Sum {
			t.Fatalf("Stored(tree, %v) = %+v, want the stored tree %+v", verify, c, put)
		}
	}

	blob, err := s.PutInline(ctx, []byte("inline"))
	must(t, err)
	c, err := s.Stored(ctx, blob.Sum, store.Blob, false)
	must(t, err)
	if c.Sum != blob.Sum || c.Count != 1 || c.Size != 6 || c.Tree != nil {
		t.Fatalf("Stored(blob) = %+v, want %+v", c, blob)
	}

	// A damaged file of the tree: only the full verification sees it.
	overwrite(t, st, store.BlobKey(digest.Bytes([]byte("alpha"))), "omega")
	if _, err := s.Stored(ctx, put.Sum, store.Tree, false); err != nil {
		t.Fatalf("Stored(tree, false) read the files: %v", err)
	}
	var damaged *DamagedError
	if _, err := s.Stored(ctx, put.Sum, store.Tree, true); !errors.As(err, &damaged) || damaged.Sum != put.Sum {
		t.Fatalf("Stored(tree, true) of a damaged file = %v, want a *DamagedError", err)
	}
	// A damaged blob.
	overwrite(t, st, store.BlobKey(blob.Sum), "tampered")
	if _, err := s.Stored(ctx, blob.Sum, store.Blob, false); !errors.As(err, &damaged) {
		t.Fatalf("Stored(blob) damaged = %v, want a *DamagedError", err)
	}
	// A listing that cannot be read: unreadable, or damage when verifying.
	must(t, os.Remove(filepath.Join(st.LocalRoot(), filepath.FromSlash(store.ListingKey(put.Sum)))))
	var unreadable *ListingUnreadableError
	if _, err := s.Stored(ctx, put.Sum, store.Tree, false); !errors.As(err, &unreadable) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stored(tree, false) without its listing = %v, want a *ListingUnreadableError", err)
	}
	if _, err := s.Stored(ctx, put.Sum, store.Tree, true); !errors.As(err, &damaged) {
		t.Fatalf("Stored(tree, true) without its listing = %v, want a *DamagedError", err)
	}
}

// TestVerifyArchive: each way a stored archive can fail refresh is its
// own error.
func TestVerifyArchive(t *testing.T) {
	ctx := context.Background()
	s, st := newSources(t, filepath.Join(t.TempDir(), "store"))
	src := t.TempDir()
	write(t, src, map[string]string{"index.html": "<p>hi</p>", "app.js": "go()"})
	c, _, err := s.Put(ctx, Source{Path: src}, nil)
	must(t, err)
	sum, err := s.StoreArchive(ctx, archive.Zip, src, c, nil, false)
	must(t, err)
	listing := c.Listing.Digest()

	must(t, s.VerifyArchive(ctx, archive.Zip, listing, &sum))
	must(t, s.VerifyArchive(ctx, archive.Zip, listing, nil))

	var noListing *ArchiveListingError
	other := digest.Bytes([]byte("no such listing"))
	if err := s.VerifyArchive(ctx, archive.Zip, other, &sum); !errors.As(err, &noListing) || noListing.Listing != other || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("VerifyArchive of a listing not stored = %v, want an *ArchiveListingError", err)
	}
	if err := s.VerifyArchive(ctx, archive.Zip, other, nil); !errors.As(err, &noListing) {
		t.Fatalf("VerifyArchive(nil) of a listing not stored = %v, want an *ArchiveListingError", err)
	}

	// The reference replaced behind the store's back, the archive intact.
	key := store.ArchiveKey(archive.Version(archive.Zip), listing)
	elsewhere := digest.Bytes([]byte("another archive"))
	overwrite(t, st, key, elsewhere.String()+"\n")
	var changed *ArchiveRefChangedError
	if err := s.VerifyArchive(ctx, archive.Zip, listing, &sum); !errors.As(err, &changed) ||
		changed.Key != key || changed.Ref != elsewhere || changed.Archive != sum {
		t.Fatalf("VerifyArchive with an altered reference = %v, want an *ArchiveRefChangedError", err)
	}

	// A reference that cannot be read (a directory in its place).
	p := filepath.Join(st.LocalRoot(), filepath.FromSlash(key))
	must(t, os.Remove(p))
	must(t, os.Mkdir(p, 0o755))
	var unreadable *ArchiveRefUnreadableError
	if err := s.VerifyArchive(ctx, archive.Zip, listing, &sum); !errors.As(err, &unreadable) {
		t.Fatalf("VerifyArchive with an unreadable reference = %v, want an *ArchiveRefUnreadableError", err)
	}
	must(t, os.Remove(p))
	must(t, s.VerifyArchive(ctx, archive.Zip, listing, &sum)) // no reference yet: fine

	// The archive's bytes damaged.
	overwrite(t, st, store.BlobKey(sum), "not a zip")
	err = s.VerifyArchive(ctx, archive.Zip, listing, &sum)
	var corrupt *archive.CorruptError
	var mismatch *store.MismatchError
	own := errors.As(err, &corrupt) || errors.As(err, &mismatch)
	if !own || errors.As(err, &noListing) || errors.As(err, &changed) || errors.As(err, &unreadable) {
		t.Fatalf("VerifyArchive of a damaged archive = %v, want the archive's own error", err)
	}
}

// TestEnsureArchive: an archive built back from the store is the one
// built from the source; a file's listing is stored with it; an archive
// other than the planned one is an *ArchiveChangedError.
func TestEnsureArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, st := newSources(t, filepath.Join(dir, "store"))
	src := filepath.Join(dir, "src")
	write(t, src, map[string]string{"index.html": "<p>hi</p>", "bin/run*": "#!/bin/sh\n"})
	c, _, err := s.Put(ctx, Source{Path: src}, nil)
	must(t, err)
	sum, err := s.EnsureArchive(ctx, archive.TarGz, c.Listing, false, nil)
	must(t, err)
	fromSource, err := newSourcesOn(st).StoreArchive(ctx, archive.TarGz, src, c, nil, false)
	must(t, err)
	if sum != fromSource {
		t.Fatalf("archive from the store %s, from the source %s: want one archive", sum, fromSource)
	}
	if again, err := s.EnsureArchive(ctx, archive.TarGz, c.Listing, false, &sum); err != nil || again != sum {
		t.Fatalf("EnsureArchive again = %s, %v; want %s", again, err, sum)
	}
	other := digest.Bytes([]byte("another archive"))
	var changed *ArchiveChangedError
	if got, err := s.EnsureArchive(ctx, archive.TarGz, c.Listing, false, &other); !errors.As(err, &changed) ||
		got != sum || changed.Planned != other || changed.Stored != sum {
		t.Fatalf("EnsureArchive against another plan = %s, %v; want an *ArchiveChangedError", got, err)
	}

	file := filepath.Join(dir, "app.js")
	write(t, dir, map[string]string{"app.js": "go()"})
	fc, _, err := s.Put(ctx, Source{Path: file}, nil)
	must(t, err)
	if has, err := st.HasListing(ctx, fc.Listing.Digest()); err != nil || has {
		t.Fatalf("a file's listing stored before its archive (%v, %v)", has, err)
	}
	_, err = s.EnsureArchive(ctx, archive.Zip, fc.Listing, true, nil)
	must(t, err)
	if has, err := st.HasListing(ctx, fc.Listing.Digest()); err != nil || !has {
		t.Fatalf("a file's listing not stored with its archive (%v, %v)", has, err)
	}
}
