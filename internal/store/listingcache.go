package store

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// ListingCache keeps, on this machine, copies of tree listings this
// machine published or read, so that what only needs a listing's content
// (a plan naming the paths that changed since the previous version) does
// not read it from the store again. A listing's name is its sha256 and
// every read checks it, so a damaged or planted file is a miss, never a
// wrong answer. It says nothing about what the store holds: whoever
// relies on a listing being stored (Publish, a release) reads the store.
type ListingCache struct{ dir string }

// MaxCachedListing bounds the listings a ListingCache keeps, in bytes:
// larger ones (over about ten thousand files) are read from the store.
const MaxCachedListing = 4 << 20

// NewListingCache returns the cache in dir; nil (every lookup misses)
// when dir is "".
func NewListingCache(dir string) *ListingCache {
	if dir == "" {
		return nil
	}
	return &ListingCache{dir: dir}
}

func (c *ListingCache) file(sum digest.Sum) string {
	h := sum.Hex()
	return filepath.Join(c.dir, h[:2], h)
}

// get returns the listing cached under sum, verified.
func (c *ListingCache) get(sum digest.Sum) (*digest.Listing, bool) {
	if c == nil {
		return nil, false
	}
	f, err := os.Open(c.file(sum))
	if err != nil {
		return nil, false
	}
	defer func() { _ = f.Close() }() // read-only
	b, err := io.ReadAll(io.LimitReader(f, MaxCachedListing+1))
	if err != nil || len(b) > MaxCachedListing || digest.Bytes(b) != sum {
		return nil, false
	}
	m, err := digest.ParseListing(b)
	if err != nil {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(f.Name(), now, now) // best effort: a used entry is kept longer
	return m, true
}

// put keeps a listing's canonical bytes; failures are ignored (a miss
// only costs a request).
func (c *ListingCache) put(b []byte) {
	if c == nil || len(b) > MaxCachedListing {
		return
	}
	name := c.file(digest.Bytes(b)) // replaced if there: it may be damaged
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	c.sweep(dir)
	f, err := tmpfile.Create(dir, ".listing-")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), name) != nil {
		_ = os.Remove(f.Name()) // best effort: an entry not written is a miss
	}
}

// listingCacheAge is how long an entry unused is kept.
const listingCacheAge = 30 * 24 * time.Hour

// sweep removes the listings in dir (one of the 256 fan-out directories)
// unused for listingCacheAge: each put sweeps one directory, so the cache
// holds about what a month of publishing read or wrote.
func (c *ListingCache) sweep(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if len(e.Name()) != 64 || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > listingCacheAge {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: the cache only spares requests
		}
	}
}

// SetListingCache makes the store keep the listings it publishes and
// reads through ListingContent in c (nil: none).
func (s *Store) SetListingCache(c *ListingCache) { s.listings = c }

// ListingContent returns a tree listing's content, from this machine's
// listing cache when it holds it (no request), else read and verified
// from the store (GetListing) and kept. Use it only where the content
// is all that is needed: a listing found in the cache may have been
// collected from the store since.
func (s *Store) ListingContent(ctx context.Context, sum digest.Sum) (*digest.Listing, error) {
	if m, ok := s.listings.get(sum); ok {
		return m, nil
	}
	m, err := s.GetListing(ctx, sum)
	if err == nil {
		s.listings.put(m.Encode())
	}
	return m, err
}
