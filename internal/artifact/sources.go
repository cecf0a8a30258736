package artifact

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Sources hashes sources for one store and stores them, for one
// Terraform operation: it remembers the listings the operation's destroys
// forgot (a replacement publishes against them).
type Sources struct {
	st   *store.Store
	memo *statcache.Memo
	refs *archive.Refs

	mu        sync.Mutex
	forgotten []forgotten
	// planned and plannedFiles: where content hashed in this operation
	// lives on disk (planned.go).
	planned      map[digest.Sum]plannedTree
	plannedFiles map[digest.Sum]plannedFile
}

// forgotten is an artifact a destroy forgot in this operation.
type forgotten struct {
	source string
	sum    digest.Sum
}

// New returns the sources of one operation on st: trees are walked once
// through memo, archives found and checked through refs.
func New(st *store.Store, memo *statcache.Memo, refs *archive.Refs) *Sources {
	return &Sources{st: st, memo: memo, refs: refs}
}

// Hash hashes src as Hash does, and refuses what the store could not
// keep: a directory holding the local store (unless excluded), and a
// listing larger than store.MaxListing.
func (s *Sources) Hash(ctx context.Context, src Source) (*Content, error) {
	fi, err := resolve(src)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if err := s.checkStoreInside(src); err != nil {
			return nil, err
		}
	}
	c, err := hash(ctx, s.memo, src, fi)
	if err != nil {
		return nil, err
	}
	if err := checkSize(src, c); err != nil {
		return nil, err
	}
	s.remember(src, c)
	return c, nil
}

// checkStoreInside refuses a directory source that holds the local store
// (unless its excludes leave the store out).
func (s *Sources) checkStoreInside(src Source) error {
	root := s.st.LocalRoot()
	if root == "" {
		return nil
	}
	if rel, in, err := fsguard.Rel(root, src.Path); err == nil && in && !digest.Excluded(rel, src.Excludes) {
		return &StoreInsideSourceError{Store: s.st.String(), Source: src.Path, Rel: rel}
	}
	return nil
}

// checkSize refuses a tree whose listing the store could not give back.
func checkSize(src Source, c *Content) error {
	if c.Tree == nil {
		return nil
	}
	if n := c.Tree.EncodedSize(); n > store.MaxListing {
		return &TooLargeError{Path: src.Path, Err: &store.ListingTooLargeError{Size: n}}
	}
	return nil
}

// PutInline stores inline content.
func (s *Sources) PutInline(ctx context.Context, b []byte) (*Content, error) {
	c := Inline(b)
	if _, err := s.st.PutBlob(ctx, c.Sum, strings.NewReader(string(b))); err != nil {
		return nil, err
	}
	return c, nil
}

// Put stores src at apply, if it is still what was planned (planned nil:
// whatever it is now; else a *ChangedError, with the content as it is now,
// and nothing names it in the store).
//
// A file is hashed as it is stored, in one read. A directory is hashed
// again — the walk of this operation's final plan when there was one,
// else through the stat cache, so an unchanged tree costs a stat per file
// — and published: only the blobs the listings this operation's destroys
// forgot do not name are checked and sent, each verified against the
// listing as it is read.
func (s *Sources) Put(ctx context.Context, src Source, planned *digest.Sum) (*Content, store.PublishStats, error) {
	var stats store.PublishStats
	fi, err := resolve(src)
	if err != nil {
		return nil, stats, err
	}
	if !fi.IsDir() {
		sum, size, err := s.st.PutFile(ctx, src.Path)
		if err != nil {
			return nil, stats, &ContentError{Path: src.Path, Err: err}
		}
		c := fileContent(fi, sum, size)
		if planned != nil && *planned != sum {
			return c, stats, &ChangedError{Path: src.Path, Planned: *planned, Now: sum}
		}
		return c, stats, nil
	}
	if err := s.checkStoreInside(src); err != nil {
		return nil, stats, err
	}
	c, err := hash(ctx, s.memo, src, fi)
	if err != nil {
		return nil, stats, err
	}
	if planned != nil && *planned != c.Sum {
		return c, stats, &ChangedError{Path: src.Path, Planned: *planned, Now: c.Sum}
	}
	if err := checkSize(src, c); err != nil {
		return nil, stats, err
	}
	if stats, err = s.st.Publish(ctx, src.Path, c.Tree, s.known(src.Path)...); err != nil {
		return nil, stats, &ContentError{Path: src.Path, Err: err}
	}
	return c, stats, nil
}

// maxKnownListings bounds the listings a publish reads to learn what is
// stored (one request each).
const maxKnownListings = 4

// Forgot records an artifact of source a destroy forgot in this
// operation: its listing is stored, so a replacement created next
// (Terraform destroys first, unless create_before_destroy) publishes
// against it, sending only what it lacks.
func (s *Sources) Forgot(source string, sum digest.Sum) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgotten = append(s.forgotten, forgotten{source, sum})
}

// known returns listings this operation's destroys forgot, that a publish
// of source can rely on: the same source's first (most likely the
// previous version), then the latest others (a versioned folder such as
// dist-1.4 replacing dist-1.3), at most maxKnownListings.
func (s *Sources) known(source string) []digest.Sum {
	s.mu.Lock()
	defer s.mu.Unlock()
	var same, others []digest.Sum
	for i := len(s.forgotten) - 1; i >= 0; i-- {
		f := s.forgotten[i]
		switch {
		case slices.Contains(same, f.sum) || slices.Contains(others, f.sum):
		case f.source == source:
			same = append(same, f.sum)
		default:
			others = append(others, f.sum)
		}
	}
	same = append(same, others...)
	return same[:min(len(same), maxKnownListings)]
}
