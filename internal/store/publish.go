package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Concurrency is an optional Backend method: how many objects a Publish
// writes at once. A network store wants many requests in flight (S3: 32 by
// default, the `s3` block's `max_concurrency`); the default is the number
// of CPUs.
type Concurrency interface {
	Concurrency() int
}

// Stager is an optional Backend whose writes can be made durable in one
// step per batch instead of one per object: Stage writes an object where
// no reader sees it, Commit makes all staged objects durable with one
// flush and only then visible (each atomically, never overwriting one that
// exists), and Discard drops staged objects that will not be committed. A
// crash at any point leaves each object absent or whole.
//
// Stage returns ErrExists when the key holds an object; that object may
// be another writer's that is visible but not durable yet, so a Publish
// that relies on one calls Sync with its key before writing the listing.
type Stager interface {
	Stage(ctx context.Context, key string, r io.Reader) (Staged, error)
	Commit(ctx context.Context, staged []Staged) error
	Discard(staged []Staged)
	Sync(ctx context.Context, keys []string) error
}

// A FileStager is a Stager that stages a blob straight from an open
// regular file: the local store copies it in the kernel (copy_file_range)
// and verify reads back what was staged, so that what is verified is the
// store's copy and the bytes cross user space once, to be hashed.
type FileStager interface {
	// StageFile stages at most size+1 bytes of src under key (a file that
	// grew since it was hashed fails verify), then calls verify with a
	// reader of the staged copy; an error from verify abandons the copy.
	StageFile(ctx context.Context, key string, src *os.File, size int64, verify func(io.Reader) error) (Staged, error)
}

// Staged is an object written by Stager.Stage and not yet visible.
type Staged interface {
	Key() string
}

// SmallBlob is the size up to which Publish writes a blob without asking
// first whether it is stored: the conditional create answers that too, in
// one request instead of two, and at worst sends a small body for nothing.
// That holds while most blobs are missing (a first publish); once most
// answers say stored (a re-run of a publish that failed part-way), each
// small blob is asked about first too, so that only what is still missing
// is sent.
const SmallBlob = 1 << 20

// PublishStats count what a Publish did; tests and benchmarks read them.
type PublishStats struct {
	Needed  int // distinct blobs not known to be stored
	Written int // of those, written by this Publish
	Present int // of those, found stored already
}

// Publish stores the tree m, whose entries were read from the directory
// root, and its listing last. It writes only what is not known to be
// stored: nothing when the listing itself is stored; otherwise the
// distinct blobs that are not named by any listing in known (each of which
// must be stored: see the invariant in the package comment — Publish
// reads each with one request and ignores one it cannot use). Files are re-read and
// verified against m as they are written, so a file changed since it was
// hashed fails the publish with a *MismatchError and nothing names it.
// Blobs are written Concurrency() at once; cancelling ctx stops them all.
// A re-run of a publish that failed part-way sends only what is still
// missing (see SmallBlob).
func (s *Store) Publish(ctx context.Context, root string, m *digest.Listing, known ...digest.Sum) (PublishStats, error) {
	var stats PublishStats
	if err := m.Validate(); err != nil {
		return stats, err
	}
	if n := m.EncodedSize(); n > MaxListing {
		return stats, &ListingTooLargeError{Size: n}
	}
	sum := m.Digest()
	// Everything this publish will reference or rely on is held before
	// any of it is checked (the collector protocol, see Hold): the
	// listing, the known listings (their blobs are not checked), and every
	// blob, present or to be written. Held first, then the listing looked
	// for: one request fewer than looking, holding and looking again when
	// it is stored, and than looking before holding when it is not.
	held := []string{ListingKey(sum)}
	for _, k := range known {
		held = append(held, ListingKey(k))
	}
	seenHeld := map[digest.Sum]bool{}
	for _, e := range m.Entries {
		if !seenHeld[e.SHA256] {
			seenHeld[e.SHA256] = true
			held = append(held, BlobKey(e.SHA256))
		}
	}
	lease, err := s.Hold(ctx, held...)
	if err != nil {
		return stats, err
	}
	heldAt := time.Now()
	if ok, err := s.HasListing(ctx, sum); err != nil || ok {
		// Stored already: the lease keeps it from a collector now and,
		// for its grace period, as garbage (a lease counts as a recent use).
		if err != nil {
			lease.Drop(ctx)
		}
		return stats, err
	}
	have := map[digest.Sum]bool{}
	for _, k := range known {
		if k == sum {
			continue
		}
		// One request. A listing that cannot be used (gone, damaged, or
		// unreadable) only means its blobs are checked after all; a store
		// that is really broken fails the writes below with its own error.
		prev, err := s.GetListing(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				lease.Drop(ctx)
				return stats, ctx.Err()
			}
			continue
		}
		for _, e := range prev.Entries {
			have[e.SHA256] = true
		}
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		lease.Drop(ctx)
		return stats, err
	}
	var todo []digest.Entry
	seen := map[digest.Sum]bool{}
	for _, e := range m.Entries {
		if have[e.SHA256] || seen[e.SHA256] {
			continue
		}
		seen[e.SHA256] = true
		todo = append(todo, e)
	}
	stats.Needed = len(todo)
	w := &publisher{s: s, root: resolved}
	if st, ok := s.b.(Stager); ok {
		w.stager = st
	}
	if err := w.run(ctx, todo, s.Concurrency()); err != nil {
		// Blobs only: nothing names them, and the listing is not written.
		lease.Drop(ctx)
		return stats, err
	}
	stats.Written = int(w.written.Load())
	stats.Present = stats.Needed - stats.Written
	if time.Since(heldAt) > LeaseTTL/2 {
		// A publish long enough for its lease to near its end: what it
		// found stored at the start is held and checked again (PutTree)
		// before a listing names it.
		_, err := s.PutListing(ctx, m)
		return stats, err
	}
	if _, err := s.putListing(ctx, m); err != nil {
		return stats, err
	}
	return stats, nil
}

// Concurrency is how many objects the store reads or writes at once for
// one caller (a publish, an export, a verify): its backend's Concurrency,
// else the number of CPUs.
func (s *Store) Concurrency() int {
	if c, ok := s.b.(Concurrency); ok && c.Concurrency() > 0 {
		return c.Concurrency()
	}
	return runtime.GOMAXPROCS(0)
}

type publisher struct {
	s      *Store
	root   string
	stager Stager

	mu       sync.Mutex
	staged   []Staged
	existing []string // keys found stored by Stage or Create, maybe not durable yet
	written  atomic.Int64
	// The answers so far about blobs: found stored, or found missing.
	stored, missing atomic.Int64
}

// askFirst reports whether a small blob is asked about before it is sent:
// when most blobs so far were stored already.
func (p *publisher) askFirst() bool {
	return p.stager == nil && p.stored.Load() > p.missing.Load()
}

// run writes every entry's blob, n at once, and commits staged ones. On a
// backend where asking costs a request, the first small blob (at most
// SmallBlob) goes alone: its answer tells a first publish (send the rest)
// from a re-run of one that failed part-way (ask about each first:
// askFirst). Never a large one: it is asked about first anyway, and sent
// alone it would hold back every other upload until it is done; with no
// small blob there is nothing to probe for.
func (p *publisher) run(ctx context.Context, todo []digest.Entry, n int) error {
	if p.stager == nil && len(todo) > 1 {
		if i := slices.IndexFunc(todo, func(e digest.Entry) bool { return e.Size <= SmallBlob }); i >= 0 {
			if err := p.one(ctx, todo[i]); err != nil {
				return err
			}
			todo = append(todo[:i:i], todo[i+1:]...)
		}
	}
	err := ForEach(ctx, n, len(todo), func(ctx context.Context, i int) error { return p.one(ctx, todo[i]) })
	if p.stager == nil {
		return err
	}
	if err != nil {
		p.stager.Discard(p.staged)
		return err
	}
	if err := p.stager.Commit(ctx, p.staged); err != nil {
		return err
	}
	if len(p.existing) > 0 {
		// Another writer's blobs this listing will name: durable before it.
		return p.stager.Sync(ctx, p.existing)
	}
	return nil
}

// ForEach calls fn for 0 <= i < count on n goroutines at once. The first
// failure cancels the context the others run with and stops the feeding;
// it is returned (a cancellation it caused elsewhere is not), or ctx's
// error when ctx ended first.
func ForEach(ctx context.Context, n, count int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(max(n, 1), max(count, 1)) {
		wg.Go(func() {
			for i := range jobs {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil || (errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
						first = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for i := range count {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// one stores the blob of one entry, read again from the tree and verified.
func (p *publisher) one(ctx context.Context, e digest.Entry) error {
	abs := filepath.Join(p.root, filepath.FromSlash(e.Path))
	var r io.Reader
	var file *os.File // a regular file's, for a FileStager
	if e.Kind == digest.KindSymlink {
		target, err := os.Readlink(abs)
		if errors.Is(err, syscall.EINVAL) {
			return &digest.ChangedError{Path: e.Path, Now: "not a symlink"}
		}
		if err != nil {
			return err
		}
		r = bytes.NewReader([]byte(target))
	} else {
		fi, err := os.Lstat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			return &digest.ChangedError{Path: e.Path, Now: "gone"}
		}
		if err != nil {
			return err
		}
		f, err := digest.OpenListed(abs, fi)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // read-only
		r, file = f, f
	}
	key := BlobKey(e.SHA256)
	if e.Size > SmallBlob || p.askFirst() {
		// A large body is worth a request to avoid sending it again, and
		// so is a small one that is most likely stored.
		if ok, err := p.s.b.Exists(ctx, key); err != nil || ok {
			if ok {
				p.stored.Add(1)
				p.s.Stats.BlobsSkipped.Add(1)
				p.mu.Lock()
				p.existing = append(p.existing, key)
				p.mu.Unlock()
			}
			return err
		}
	}
	vr := newVerifyingReader(r, e.Path, e.SHA256)
	var err error
	if p.stager != nil {
		var st Staged
		if fst, ok := p.stager.(FileStager); ok && file != nil {
			st, err = fst.StageFile(ctx, key, file, e.Size, func(staged io.Reader) error {
				vr = newVerifyingReader(staged, e.Path, e.SHA256)
				_, err := digest.Copy(ctx, io.Discard, vr)
				return err
			})
		} else {
			st, err = p.stager.Stage(ctx, key, vr)
		}
		if err == nil {
			p.mu.Lock()
			p.staged = append(p.staged, st)
			p.mu.Unlock()
		}
	} else {
		err = p.s.b.Create(ctx, key, vr)
	}
	switch {
	case errors.Is(err, ErrExists):
		p.stored.Add(1)
		p.s.Stats.BlobsSkipped.Add(1)
		p.mu.Lock()
		p.existing = append(p.existing, key)
		p.mu.Unlock()
		return nil
	case err != nil:
		return fmt.Errorf("file %q: %w", e.Path, err)
	}
	p.missing.Add(1)
	p.written.Add(1)
	p.s.Stats.BlobsWritten.Add(1)
	p.s.Stats.BytesWritten.Add(vr.N())
	return nil
}

// MissingBlobs checks the store's invariant over all of it: for each
// stored listing that names a blob the store does not hold, the blobs it
// lacks. It costs two listings of the store and a read per tree listing,
// never a request per blob. An empty map means the invariant holds.
func (s *Store) MissingBlobs(ctx context.Context) (map[digest.Sum][]digest.Sum, error) {
	blobs, err := s.b.List(ctx, FamilyBlob.Prefix())
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(blobs))
	for _, k := range blobs {
		have[k] = true
	}
	trees, err := s.b.List(ctx, FamilyListing.Prefix())
	if err != nil {
		return nil, err
	}
	missing := map[digest.Sum][]digest.Sum{}
	for _, k := range trees {
		key, ok := ParseKey(k)
		switch {
		case !ok || key.Family != FamilyListing:
			return nil, fmt.Errorf("%s in %s: not a listing's name", k, s)
		}
		sum := key.Digest
		m, err := s.GetListing(ctx, sum)
		if err != nil {
			return nil, err
		}
		for _, e := range m.Entries {
			if !have[BlobKey(e.SHA256)] {
				missing[sum] = append(missing[sum], e.SHA256)
			}
		}
	}
	return missing, nil
}
