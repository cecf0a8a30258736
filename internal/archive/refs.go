package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// Refs finds, builds and writes out the archives of listings in a store.
//
// An archive reference (archives/<format>-v1/<listing>) is not
// content-addressed: anyone who can write the store could point it at
// another tree's archive. So no archive is trusted before it has been
// read and checked against the listing it claims (Verify): Lookup and
// Ensure check each one the first time this Refs meets it (the provider
// makes one per operation, so each Terraform process checks once), and
// WriteFile checks what it writes, every time.
type Refs struct {
	st       *store.Store
	mu       sync.Mutex
	verified map[refKey]bool
	// TempDir is where archives are built and checked ("" = os.TempDir()).
	TempDir string
}

// Temporary files, named by tmpfile so a killed process's are swept.
const (
	tmpCheck = "immutable-archive-check-"
	tmpBuild = "immutable-archive-build-"
)

type refKey struct {
	format           Format
	listing, archive digest.Sum
}

// NewRefs returns a Refs on st.
func NewRefs(st *store.Store) *Refs { return &Refs{st: st, verified: map[refKey]bool{}} }

// CorruptError is an archive reference whose archive fails verification.
type CorruptError struct {
	Key     string // the reference's store key
	Archive digest.Sum
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("the archive reference %s names the archive %s, which fails verification: %v", e.Key, e.Archive, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Lookup returns the verified archive of listing in format, or an error
// wrapping store.ErrNotFound when none is stored, or a *CorruptError.
func (r *Refs) Lookup(ctx context.Context, format Format, listing *digest.Listing) (digest.Sum, error) {
	sum, err := r.st.GetArchiveRef(ctx, Version(format), listing.Digest())
	if err != nil {
		return sum, err
	}
	return sum, r.check(ctx, format, listing, sum, false)
}

// Verify reads the archive sum from the store and checks it against
// listing, even if it was checked before (verify_on_refresh).
func (r *Refs) Verify(ctx context.Context, format Format, listing *digest.Listing, sum digest.Sum) error {
	return r.check(ctx, format, listing, sum, true)
}

func (r *Refs) check(ctx context.Context, format Format, listing *digest.Listing, sum digest.Sum, again bool) error {
	k := refKey{format, listing.Digest(), sum}
	r.mu.Lock()
	done := r.verified[k]
	r.mu.Unlock()
	if done && !again {
		return nil
	}
	tmpfile.Sweep(r.TempDir, tmpCheck)
	tmp, err := tmpfile.Create(r.TempDir, tmpCheck)
	if err != nil {
		return err
	}
	defer func() {
		_ = tmp.Close()           // already closed on success
		_ = os.Remove(tmp.Name()) // gone after a rename
	}()
	if err := r.fill(ctx, tmp, format, listing, sum); err != nil {
		return err
	}
	r.remember(k)
	return nil
}

func (r *Refs) remember(k refKey) {
	r.mu.Lock()
	r.verified[k] = true
	r.mu.Unlock()
}

// fill copies the archive blob sum into f (its bytes checked against sum
// as they are read) and checks its content against listing.
func (r *Refs) fill(ctx context.Context, f *os.File, format Format, listing *digest.Listing, sum digest.Sum) error {
	rc, err := r.st.OpenBlob(ctx, sum)
	if errors.Is(err, store.ErrNotFound) {
		// The reference names an archive that is not stored: as corrupt as
		// one naming the wrong archive (and not "no reference").
		return &CorruptError{Key: store.ArchiveKey(Version(format), listing.Digest()), Archive: sum, Err: errors.New("that blob is not in the store")}
	}
	if err != nil {
		return err
	}
	n, err := digest.Copy(ctx, f, rc)
	_ = rc.Close() // read-only; the copy has already verified every byte
	if err != nil {
		return err
	}
	if err := Verify(ctx, format, f, n, listing, sum); err != nil {
		return &CorruptError{Key: store.ArchiveKey(Version(format), listing.Digest()), Archive: sum, Err: err}
	}
	return nil
}

// Find returns the archive recorded for listing in format without reading
// it, or an error wrapping store.ErrNotFound. It is not trusted yet: the
// caller Checks it, or writes it out with WriteFile (which checks it in
// the same read), before using it.
func (r *Refs) Find(ctx context.Context, format Format, listing *digest.Listing) (digest.Sum, error) {
	return r.st.GetArchiveRef(ctx, Version(format), listing.Digest())
}

// Check verifies the archive sum against listing, once per Refs.
func (r *Refs) Check(ctx context.Context, format Format, listing *digest.Listing, sum digest.Sum) error {
	return r.check(ctx, format, listing, sum, false)
}

// Ensure returns the archive of listing in format, building it from open
// and storing it only if none is stored yet: an archive is never rebuilt.
// A reference found stored is verified like Lookup's.
func (r *Refs) Ensure(ctx context.Context, format Format, listing *digest.Listing, open Opener) (digest.Sum, error) {
	sum, err := r.Lookup(ctx, format, listing)
	if !errors.Is(err, store.ErrNotFound) {
		return sum, err
	}
	return r.Build(ctx, format, listing, open)
}

// Build builds the archive of listing from open and stores it: the listing
// first (a no-op for a tree, already stored), so a reference's listing is
// always there to check the archive by, then the archive's blob, then the
// reference. If a concurrent writer recorded a reference first, that one
// is returned, verified.
func (r *Refs) Build(ctx context.Context, format Format, listing *digest.Listing, open Opener) (digest.Sum, error) {
	var sum digest.Sum
	if _, err := r.st.PutListing(ctx, listing); err != nil {
		return sum, err
	}
	// The archive's digest is only known once it is built, so it is built
	// into a private temporary file first and then stored as a blob.
	tmpfile.Sweep(r.TempDir, tmpBuild)
	tmp, err := tmpfile.Create(r.TempDir, tmpBuild)
	if err != nil {
		return sum, err
	}
	defer func() {
		_ = tmp.Close()           // read back below; nothing to flush
		_ = os.Remove(tmp.Name()) // private scratch
	}()
	h := sha256.New()
	if err := Write(ctx, io.MultiWriter(tmp, h), format, listing, open); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	if _, err := r.st.PutBlob(ctx, sum, tmp); err != nil {
		return sum, err
	}
	built := sum
	if sum, err = r.st.PutArchiveRef(ctx, Version(format), listing.Digest(), built); err != nil {
		return sum, err
	}
	if sum == built {
		r.remember(refKey{format, listing.Digest(), sum}) // built here, from verified content
		return sum, nil
	}
	return sum, r.check(ctx, format, listing, sum, false) // another writer's
}

// WriteFile writes the archive sum of listing to path atomically: the
// blob is copied to a temporary file beside the real target, checked
// against sum and against listing (unless this Refs checked that archive
// already: the bytes, verified against sum, are then the same), and only
// then renamed over the target, so a reader sees the old file or the whole
// verified new one, never another tree's archive. The target is path with
// its symlinks and ".." resolved as the kernel would (fsguard.Resolve), so
// what allow checks is what is written: allow runs on it last, just before
// the rename, and a non-nil error stops the write. Missing parent
// directories are created, as local_file and archive_file do.
func (r *Refs) WriteFile(ctx context.Context, format Format, listing *digest.Listing, sum digest.Sum, path string, allow func(target string) error) error {
	target, err := fsguard.Resolve(path)
	if err != nil {
		return err
	}
	if allow != nil {
		if err := allow(target); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	prefix := "." + filepath.Base(target) + ".tmp-"
	tmpfile.Sweep(filepath.Dir(target), prefix) // left by a killed apply
	tmp, err := tmpfile.Create(filepath.Dir(target), prefix)
	if err != nil {
		return err
	}
	defer func() {
		_ = tmp.Close()           // already closed on success
		_ = os.Remove(tmp.Name()) // gone after a rename
	}()
	if err := r.CopyTo(ctx, tmp, format, listing, sum); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// rename(2) replaces whatever non-directory is at the target: check
	// again, as late as possible.
	if allow != nil {
		if err := allow(target); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
		return &NotRegularError{Path: path, Type: digest.TypeName(fi.Mode().Type())}
	}
	return os.Rename(tmp.Name(), target)
}

// CopyTo copies the archive sum of listing into f, checked against sum
// as it is read and against listing (unless this Refs checked that
// archive already: the bytes, verified against sum, are then the same).
// On an error, f holds an unchecked partial copy: the caller discards it.
func (r *Refs) CopyTo(ctx context.Context, f *os.File, format Format, listing *digest.Listing, sum digest.Sum) error {
	k := refKey{format, listing.Digest(), sum}
	r.mu.Lock()
	known := r.verified[k]
	r.mu.Unlock()
	if !known {
		if err := r.fill(ctx, f, format, listing, sum); err != nil {
			return err
		}
		r.remember(k)
		return nil
	}
	rc, err := r.st.OpenBlob(ctx, sum) // the bytes are still checked against sum
	if err != nil {
		return err
	}
	_, err = digest.Copy(ctx, f, rc)
	_ = rc.Close() // read-only; the copy verified every byte
	return err
}

// NotRegularError is a target path that holds something other than a
// regular file, which WriteFile never replaces.
type NotRegularError struct {
	Path, Type string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s; only a regular file (or nothing) there is replaced", e.Path, e.Type)
}
