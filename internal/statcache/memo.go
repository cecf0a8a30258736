package statcache

import (
	"context"
	"path/filepath"
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Memo shares tree hashing among the resources of one Terraform
// operation: however many artifacts name the same tree (with the same
// excludes), it is walked once, and resources planning at the same time
// wait for that one walk. Make a new Memo per operation (the provider
// does at each configure), so a later operation sees later changes.
type Memo struct {
	cache *Cache
	mu    sync.Mutex
	calls map[string]*call
	Walks int // trees actually walked, for tests and benchmarks
}

type call struct {
	done chan struct{}
	m    *digest.Listing
	err  error
}

// NewMemo returns a memo hashing through c (which may be nil).
func NewMemo(c *Cache) *Memo { return &Memo{cache: c, calls: map[string]*call{}} }

// Tree returns the listing of root under opts, walking it at most once
// per memo. Failures are not remembered: the next caller tries again.
func (m *Memo) Tree(ctx context.Context, root string, opts digest.Options) (*digest.Listing, error) {
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	if resolved, err = filepath.Abs(resolved); err != nil {
		return nil, err
	}
	key := resolved + "\x00" + strings.Join(opts.Excludes, "\x00")
	m.mu.Lock()
	c, ok := m.calls[key]
	if !ok {
		c = &call{done: make(chan struct{})}
		m.calls[key] = c
		m.Walks++
	}
	m.mu.Unlock()
	if ok {
		select {
		case <-c.done:
			return c.m, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.m, c.err = HashTree(ctx, m.cache, resolved, opts)
	if c.err != nil {
		m.mu.Lock()
		delete(m.calls, key)
		m.mu.Unlock()
	}
	close(c.done)
	return c.m, c.err
}

// File hashes one file through the memo's cache. Files are not shared
// like trees: hashing one again costs a stat when the cache knows it.
func (m *Memo) File(ctx context.Context, path string) (digest.Sum, int64, error) {
	return HashFile(ctx, m.cache, path)
}
