// Package store is the content-addressed, write-once store behind the
// provider. A Store adds content addressing, verification and
// deduplication on top of a Backend, which only has to create objects
// atomically and without ever overwriting one.
//
// The store holds content (blobs, tree listings, archive references,
// action records, image records), the records of package release, and the collector
// protocol's leases and markers: layout.go lists every family of keys,
// builds each and reads any back (ParseKey), for this package and every
// other.
//
// The store's invariant, which every writer keeps and anything that ever
// deletes (a garbage collector) must keep too:
//
//	A stored tree listing implies that every blob it names is stored.
//
// Writers store a listing's blobs first, durably, and the listing last
// (PutTree's contract; Publish does it). So a reader that finds a listing
// never checks its blobs one by one, and Publish relies on it twice: a
// listing already stored means nothing is sent at all, and the blobs of a
// listing known to be stored (the artifact's previous version) are not
// checked again. A deleter must remove a listing before any blob it names,
// never delete a blob that a stored listing names, and never delete one
// that a writer has just found present and is about to reference: the
// collector protocol (lease.go) is how a writer says so, and package gc
// the deleter that keeps all of this.
// MissingBlobs checks the invariant over a whole store. In the same way an
// action record implies its output (a listing or a blob) and its log: a
// build stores both before the record; and an image record (package image)
// its manifest and config blobs and the trees of its layers.
//
// The package has no dependency on Terraform.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// ErrNotFound is returned for a key with no object.
var ErrNotFound = errors.New("not found in the store")

// ErrExists is returned by Backend.Create when the key already holds an
// object it did not write, which is left as it was.
var ErrExists = errors.New("already exists in the store")

// ErrFull is matched (errors.Is) by a backend's error of a write that
// failed because the store's filesystem, or the user's quota there, has
// no room left (a file store's ENOSPC and EDQUOT): the collector frees
// room first and writes its markers in halves then.
var ErrFull = errors.New("the store's filesystem is full")

// Room is what a store.ErrFull write ran out of, where the backend can
// tell (an error with a Room() Room method): so that the advice names
// what to free, and how much.
type Room struct {
	// BlockSize is the least a file takes on the store's filesystem (0:
	// unknown).
	BlockSize int64
	// Quota: the user's quota there is used up (EDQUOT), not the
	// filesystem.
	Quota bool
	// NoInodes: the filesystem has no inodes left (df -i), whatever room
	// it has.
	NoInodes bool
}

// BackendError is implemented by errors of a backend itself (the store's
// directory, its server, its credentials), as opposed to errors of the
// content being stored, so that callers can say which setting to check.
type BackendError interface {
	error
	BackendError()
}

// Backend holds write-once objects.
type Backend interface {
	// Create writes everything r yields to key, atomically and only if key
	// holds no object: afterwards key holds either nothing or the whole
	// content. It returns ErrExists, and changes nothing, if key holds an
	// object this call did not write. A write that landed but whose answer
	// was lost (a connection dropped, the request sent again and meeting
	// the object it made) is this call's: the backend checks that the
	// object is the very one this call made — by its identity (the file
	// this call linked; the random tag this call stored with the S3
	// object), never by its content, which another writer may have written
	// the same — and returns nil, so that a writer told ErrExists knows its
	// content was not written. If reading r fails, nothing is written and
	// the read error is returned.
	Create(ctx context.Context, key string, r io.Reader) error
	// Open returns the object at key, or ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Exists reports whether key holds an object.
	Exists(ctx context.Context, key string) (bool, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// String is the store's URL, for messages.
	String() string
}

// Location is where an object lives, in the forms its consumers take: a
// local file's absolute path (what aws_lambda_function.filename takes), or
// an S3 bucket and key (s3_bucket/s3_key, CloudFront origins) and its
// s3:// URL. Only the fields of the store's kind are set.
type Location struct {
	Path   string
	Bucket string
	Key    string
	URL    string
}

// Locator is a Backend that can say where an object lives. Locating reads
// nothing: the place is a function of the key.
type Locator interface {
	Locate(key string) (Location, error)
}

// Locate returns where the object at key lives, or ok false when the
// backend cannot tell.
func (s *Store) Locate(key string) (Location, bool) {
	l, isLocator := s.b.(Locator)
	if !isLocator {
		return Location{}, false
	}
	loc, err := l.Locate(key)
	return loc, err == nil
}

// Stats count the store's work; tests and benchmarks read them.
type Stats struct {
	BlobsWritten atomic.Int64 // blobs stored by this process
	BlobsSkipped atomic.Int64 // blobs found present and not written again
	BytesWritten atomic.Int64
}

// Store is a content-addressed store on a Backend.
type Store struct {
	b     Backend
	Stats Stats
	// Waiting, when set, is told when Hold waits for a garbage collection
	// deleting keys it holds (at most d), so that a wait can be reported (the provider logs it at WARN).
	Waiting func(ctx context.Context, marker string, d time.Duration)
	// Waited, when set, is told when such a wait is over (not when it was
	// cancelled): how long it took, and whether the collection finished
	// or its marker stayed until it expired (the collection was
	// interrupted), so that the wait can be explained to whoever waited.
	Waited func(ctx context.Context, w MarkerWait)

	identified  atomic.Bool // Identify found or wrote the identity
	identifying sync.Mutex
	listings    *ListingCache // this machine's copies of listings (SetListingCache)
}

// New returns a Store on b.
func New(b Backend) *Store { return &Store{b: b} }

// Backend returns the store's backend.
func (s *Store) Backend() Backend { return s.b }

// LocalRoot is the directory of a store on the local file system (a
// backend with a Root), or "" (an S3 store).
func (s *Store) LocalRoot() string {
	if b, ok := s.b.(interface{ Root() string }); ok {
		return b.Root()
	}
	return ""
}

func (s *Store) String() string { return s.b.String() }

// MismatchError is content that does not hash to the digest it was stored
// or asked for under.
type MismatchError struct {
	Key  string
	Want digest.Sum
	Got  digest.Sum
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: content hashes to %s, not %s", e.Key, e.Got, e.Want)
}

// Verified wraps r so that reading it to the end fails with a
// *MismatchError, naming name, unless the bytes hash to want.
func Verified(r io.Reader, name string, want digest.Sum) io.Reader {
	return newVerifyingReader(r, name, want)
}

// newVerifyingReader is digest's verifying reader failing with a
// *MismatchError: a Backend that copies from it never publishes wrong
// content.
func newVerifyingReader(r io.Reader, key string, want digest.Sum) *digest.Verifier {
	v := digest.VerifyingReader(r, key, want, -1)
	v.OnMismatch = func(m *digest.MismatchError) error { return &MismatchError{Key: m.Name, Want: m.Want, Got: m.Got} }
	return v
}

// PutBlob stores the bytes r yields under want, which they must hash to.
// A blob already present is not written again (written is false). The
// blob is held first (Hold): a caller is about to reference it, and a
// collector must not delete it meanwhile. If the bytes hash to anything
// else, nothing is stored and a *MismatchError is returned.
func (s *Store) PutBlob(ctx context.Context, want digest.Sum, r io.Reader) (written bool, err error) {
	key := BlobKey(want)
	lease, err := s.Hold(ctx, key)
	if err != nil {
		return false, err
	}
	ok, err := s.b.Exists(ctx, key)
	if err != nil {
		lease.Drop(ctx)
		return false, err
	}
	if ok {
		s.Stats.BlobsSkipped.Add(1)
		return false, nil
	}
	vr := newVerifyingReader(r, key, want)
	switch err := s.b.Create(ctx, key, vr); {
	case errors.Is(err, ErrExists):
		s.Stats.BlobsSkipped.Add(1)
		return false, nil
	case err != nil:
		// Nothing names the blob yet, whether or not it landed: the
		// caller, failing, will not.
		lease.Drop(ctx)
		return false, err
	}
	s.Stats.BlobsWritten.Add(1)
	s.Stats.BytesWritten.Add(vr.N())
	return true, nil
}

// HasBlob reports whether a blob is stored.
func (s *Store) HasBlob(ctx context.Context, sum digest.Sum) (bool, error) {
	return s.b.Exists(ctx, BlobKey(sum))
}

// OpenBlob returns a reader of a blob that fails with a *MismatchError at
// the end if the stored bytes were altered.
func (s *Store) OpenBlob(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	key := BlobKey(sum)
	rc, err := s.b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{newVerifyingReader(rc, key, sum), rc}, nil
}

// VerifyBlob reads a whole blob, checks it and returns its size.
func (s *Store) VerifyBlob(ctx context.Context, sum digest.Sum) (int64, error) {
	rc, err := s.OpenBlob(ctx, sum)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	return digest.Copy(ctx, io.Discard, rc)
}

// PutListing stores a tree listing under its digest. Its blobs (of files,
// and of symlinks' targets) must be stored already: a listing in the store
// promises its blobs are there. A listing stored already is left as it
// is; otherwise its blobs are held (Hold) and checked present, so that no
// listing is ever stored naming a blob that is missing or that a collector
// is deleting (Publish, which has just stored them, does not check again).
func (s *Store) PutListing(ctx context.Context, m *digest.Listing) (digest.Sum, error) {
	if err := m.Validate(); err != nil {
		return digest.Sum{}, err
	}
	if n := m.EncodedSize(); n > MaxListing {
		return digest.Sum{}, &ListingTooLargeError{Size: n}
	}
	sum := m.Digest()
	var blobs []string
	seen := map[digest.Sum]bool{}
	for _, e := range m.Entries {
		if !seen[e.SHA256] {
			seen[e.SHA256] = true
			blobs = append(blobs, BlobKey(e.SHA256))
		}
	}
	// Held first, then looked for (as in Publish): a listing found stored
	// stays held for a collector's grace period.
	lease, err := s.Hold(ctx, append(blobs, ListingKey(sum))...)
	if err != nil {
		return sum, err
	}
	if ok, err := s.HasListing(ctx, sum); err != nil || ok {
		if err != nil {
			lease.Drop(ctx)
		}
		return sum, err
	}
	if k, err := s.FirstMissing(ctx, blobs...); err != nil {
		lease.Drop(ctx)
		return sum, err
	} else if k != "" {
		lease.Drop(ctx)
		return sum, fmt.Errorf("the listing %s names %s, which the store %s does not hold: %w", sum, k, s, ErrNotFound)
	}
	return s.putListing(ctx, m)
}

// putListing stores a listing whose blobs the caller stored and held.
func (s *Store) putListing(ctx context.Context, m *digest.Listing) (digest.Sum, error) {
	if err := m.Validate(); err != nil {
		return digest.Sum{}, err
	}
	if n := m.EncodedSize(); n > MaxListing {
		return digest.Sum{}, &ListingTooLargeError{Size: n}
	}
	listing := m.Encode()
	sum := digest.Bytes(listing)
	err := s.b.Create(ctx, ListingKey(sum), bytes.NewReader(listing))
	if err != nil && !errors.Is(err, ErrExists) {
		return sum, err
	}
	s.listings.put(listing) // the next version's plan names its changes against it
	return sum, nil
}

// FirstMissing checks, Concurrency() at once, that keys are stored, and
// returns the first one (in their order) that is not, or "". A writer
// calls it after holding them (Hold), before it writes what names them.
func (s *Store) FirstMissing(ctx context.Context, keys ...string) (string, error) {
	missing := make([]bool, len(keys))
	err := ForEach(ctx, s.Concurrency(), len(keys), func(ctx context.Context, i int) error {
		ok, err := s.b.Exists(ctx, keys[i])
		missing[i] = !ok
		return err
	})
	if err != nil {
		return "", err
	}
	if i := slices.Index(missing, true); i >= 0 {
		return keys[i], nil
	}
	return "", nil
}

// HasListing reports whether a tree listing is stored.
func (s *Store) HasListing(ctx context.Context, sum digest.Sum) (bool, error) {
	return s.b.Exists(ctx, ListingKey(sum))
}

// MaxListing bounds a tree listing, in bytes of its canonical encoding
// (about ten million entries): PutTree refuses a larger one, so that
// everything stored can be read back by GetTree, which reads at most this
// much into memory. A variable only so tests can lower it.
var MaxListing int64 = 1 << 30

// ListingTooLargeError is a listing over MaxListing.
type ListingTooLargeError struct {
	Key  string // "" when refused before writing
	Size int64  // bytes, or -1 when only "more than the limit" is known
}

func (e *ListingTooLargeError) Error() string {
	what := "the tree listing"
	if e.Key != "" {
		what = "the stored tree listing " + e.Key
	}
	size := "more than"
	if e.Size >= 0 {
		size = fmt.Sprintf("%d bytes,", e.Size)
	}
	return fmt.Sprintf("%s is %s over the limit of %d bytes a listing may have (about ten million files): split the tree into several artifacts, or leave parts out with excludes", what, size, MaxListing)
}

func (s *Store) readAll(ctx context.Context, key string, want digest.Sum) ([]byte, error) {
	rc, err := s.b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	// One byte past the limit tells a listing over it from one at it; a
	// truncated listing is never returned (it would not be verified).
	b, err := io.ReadAll(io.LimitReader(newVerifyingReader(rc, key, want), MaxListing+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > MaxListing {
		return nil, &ListingTooLargeError{Key: key, Size: -1}
	}
	return b, nil
}

// GetListing reads and verifies a tree listing.
func (s *Store) GetListing(ctx context.Context, sum digest.Sum) (*digest.Listing, error) {
	key := ListingKey(sum)
	b, err := s.readAll(ctx, key, sum)
	if err != nil {
		return nil, err
	}
	m, err := digest.ParseListing(b)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", key, s, err)
	}
	return m, nil
}

// Kind is what a digest names in the store.
type Kind int

const (
	Missing Kind = iota
	Tree         // a directory artifact: a tree listing
	Blob         // a file or inline-content artifact: a blob
)

// Lookup tells whether an artifact digest names a stored tree, a stored
// blob, or nothing. A tree is looked for first.
func (s *Store) Lookup(ctx context.Context, sum digest.Sum) (Kind, error) {
	if ok, err := s.HasListing(ctx, sum); err != nil || ok {
		return Tree, err
	}
	ok, err := s.HasBlob(ctx, sum)
	if err != nil || !ok {
		return Missing, err
	}
	return Blob, nil
}

// Verify reads everything an artifact is made of and checks each piece
// against its digest. The error names the first piece that fails.
func (s *Store) Verify(ctx context.Context, sum digest.Sum) error {
	kind, err := s.Lookup(ctx, sum)
	switch {
	case err != nil:
		return err
	case kind == Missing:
		return fmt.Errorf("%s: %w", sum, ErrNotFound)
	case kind == Blob:
		_, err := s.VerifyBlob(ctx, sum)
		return err
	}
	m, err := s.GetListing(ctx, sum)
	if err != nil {
		return err
	}
	return s.VerifyTree(ctx, sum, m)
}

// VerifyTree reads every distinct blob of a tree (m, the listing of sum)
// and checks each against its digest, Concurrency() at once. The error
// names the first entry, in listing order, whose blob fails.
func (s *Store) VerifyTree(ctx context.Context, sum digest.Sum, m *digest.Listing) error {
	// The first entry of each distinct blob, in listing order.
	var todo []int
	seen := map[digest.Sum]bool{}
	for i, e := range m.Entries {
		if !seen[e.SHA256] {
			seen[e.SHA256] = true
			todo = append(todo, i)
		}
	}
	errs := make([]error, len(todo))
	var firstFailed atomic.Int64 // the lowest index that failed so far
	firstFailed.Store(int64(len(todo)))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.Concurrency(), max(len(todo), 1)) {
		wg.Go(func() {
			for j := range next {
				if _, err := s.VerifyBlob(ctx, m.Entries[todo[j]].SHA256); err != nil {
					errs[j] = err
					for {
						f := firstFailed.Load()
						if int64(j) >= f || firstFailed.CompareAndSwap(f, int64(j)) {
							break
						}
					}
				}
			}
		})
	}
feed:
	// Entries after a failure cannot be the first to fail: not read. Those
	// before it still are, so the error names the first in listing order.
	for j := range todo {
		if int64(j) > firstFailed.Load() {
			break
		}
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for j, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("file %q of %s: %w", m.Entries[todo[j]].Path, sum, err)
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// PutArchiveRef records that the archive of listing in format is the blob
// archive. If a reference is already recorded, it is kept and returned: an
// archive, once stored, is never rebuilt or replaced.
//
// A reference never names what is not stored: the listing and the archive
// are held against a concurrent collector (Hold) and found present first.
func (s *Store) PutArchiveRef(ctx context.Context, format string, listing, archive digest.Sum) (digest.Sum, error) {
	lease, err := s.Hold(ctx, ListingKey(listing), BlobKey(archive))
	if err != nil {
		return archive, err
	}
	if k, err := s.FirstMissing(ctx, ListingKey(listing), BlobKey(archive)); err != nil {
		lease.Drop(ctx)
		return archive, err
	} else if k != "" {
		lease.Drop(ctx)
		return archive, fmt.Errorf("the archive reference %s would name %s, which the store %s does not hold (a garbage collection deleted it since it was stored): %w", ArchiveKey(format, listing), k, s, ErrNotFound)
	}
	err = s.b.Create(ctx, ArchiveKey(format, listing), strings.NewReader(archive.String()+"\n"))
	if errors.Is(err, ErrExists) {
		return s.GetArchiveRef(ctx, format, listing)
	}
	return archive, err
}

// GetArchiveRef returns the archive recorded for a listing, or ErrNotFound.
func (s *Store) GetArchiveRef(ctx context.Context, format string, listing digest.Sum) (digest.Sum, error) {
	key := ArchiveKey(format, listing)
	rc, err := s.b.Open(ctx, key)
	if err != nil {
		return digest.Sum{}, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	b, err := io.ReadAll(io.LimitReader(rc, 128))
	if err != nil {
		return digest.Sum{}, err
	}
	sum, err := digest.Parse(strings.TrimSuffix(string(b), "\n"))
	if err != nil {
		return sum, fmt.Errorf("%s in %s is corrupt: %w", key, s, err)
	}
	return sum, nil
}
