package store_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// opens counts the objects read from a backend.
type opens struct {
	store.Backend
	n atomic.Int64
}

func (o *opens) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	o.n.Add(1)
	return o.Backend.Open(ctx, key)
}

// A listing this machine published is read from its listing cache, with
// no request; a cached copy that does not hash to its name (damaged, or
// planted) is never used: the store is read, and the copy replaced.
func TestListingContentFromThisMachine(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	b := &opens{Backend: fb}
	st := store.New(b)
	cacheDir := t.TempDir()
	st.SetListingCache(store.NewListingCache(cacheDir))
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("a\n"), 0o644))
	m, err := st.PutDir(ctx, src, digest.Options{})
	must(t, err)
	sum := m.Digest()

	b.n.Store(0)
	got, err := st.ListingContent(ctx, sum)
	must(t, err)
	if got.Digest() != sum || b.n.Load() != 0 {
		t.Fatalf("ListingContent = %s after %d reads, want %s from the cache, no read", got.Digest(), b.n.Load(), sum)
	}

	// A planted copy of other content under the listing's name.
	entry := filepath.Join(cacheDir, sum.Hex()[:2], sum.Hex())
	must(t, os.WriteFile(entry, digest.FileListing("evil", 0o644, digest.Bytes([]byte("x")), 1).Encode(), 0o644))
	got, err = st.ListingContent(ctx, sum)
	must(t, err)
	if got.Digest() != sum || b.n.Load() != 1 {
		t.Fatalf("with a planted cache entry ListingContent = %s after %d reads, want %s read from the store once", got.Digest(), b.n.Load(), sum)
	}
	if raw, err := os.ReadFile(entry); err != nil || digest.Bytes(raw) != sum {
		t.Fatalf("the planted entry was not replaced by the store's copy (%v)", err)
	}
	// GetListing, which callers rely on to prove the listing stored,
	// always reads the store.
	_, err = st.GetListing(ctx, sum)
	must(t, err)
	if b.n.Load() != 2 {
		t.Fatalf("GetListing made %d reads in all, want the store read", b.n.Load())
	}
}
