package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func newStoreB(b *testing.B) *store.Store {
	fb, err := filestore.New(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	return store.New(fb)
}

// must fails the test on a setup step's error: a step that did not happen
// would make the assertion after it meaningless.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) *store.Store {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return store.New(b)
}

func TestPutDirStoresEachBlobOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, content := range map[string]string{"a.txt": "same", "b/c.txt": "same", "d.txt": "other"} {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	must(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	s := newStore(t)
	m, err := s.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := digest.HashTree(ctx, dir, digest.Options{})
	if m.Digest() != want.Digest() {
		t.Fatal("stored listing differs from the hashed one")
	}
	// "same" twice, "other", and the symlink's target: 3 blobs written.
	if w := s.Stats.BlobsWritten.Load(); w != 3 {
		t.Fatalf("blobs written = %d, want 3", w)
	}
	if err := s.Verify(ctx, m.Digest()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	before := s.Stats.BlobsWritten.Load()
	if _, err := s.PutDir(ctx, dir, digest.Options{}); err != nil {
		t.Fatal(err)
	}
	if w := s.Stats.BlobsWritten.Load(); w != before {
		t.Fatalf("second PutDir wrote %d more blobs", w-before)
	}
}

func TestPutFile(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(p, []byte("content"), 0o644))
	s := newStore(t)
	sum, size, err := s.PutFile(ctx, p)
	if err != nil || sum != digest.Bytes([]byte("content")) || size != 7 {
		t.Fatalf("PutFile = %s %d %v", sum, size, err)
	}
	if k, _ := s.Lookup(ctx, sum); k != store.Blob {
		t.Fatalf("Lookup = %v", k)
	}
}

// TestListingLimit: a listing over store.MaxListing is refused before it is
// written, one at the limit reads back, and a stored listing over the
// limit is reported as too large, never returned truncated.
func TestListingLimit(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	m := &digest.Listing{}
	for i := range 100 {
		m.Entries = append(m.Entries, digest.Entry{Path: fmt.Sprintf("f%03d", i), Kind: digest.KindFile, SHA256: digest.Bytes([]byte{byte(i)}), Size: 1})
	}
	if got, want := m.EncodedSize(), int64(len(m.Encode())); got != want {
		t.Fatalf("EncodedSize %d, Encode has %d bytes", got, want)
	}
	for i := range 100 { // a listing is stored after its blobs
		if _, err := st.PutBlob(ctx, digest.Bytes([]byte{byte(i)}), bytes.NewReader([]byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	old := store.MaxListing
	defer func() { store.MaxListing = old }()

	store.MaxListing = m.EncodedSize() - 1
	var tooLarge *store.ListingTooLargeError
	if _, err := st.PutListing(ctx, m); !errors.As(err, &tooLarge) {
		t.Fatalf("PutTree over the limit: %v", err)
	}
	if ok, _ := st.HasListing(ctx, m.Digest()); ok {
		t.Fatal("a listing over the limit was written")
	}

	store.MaxListing = m.EncodedSize()
	sum, err := st.PutListing(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := st.GetListing(ctx, sum); err != nil || len(back.Entries) != len(m.Entries) {
		t.Fatalf("a listing at the limit: %v", err)
	}
	// Written under a higher limit, read under a lower one: the lines up
	// to the limit would parse as a shorter, unverified tree.
	store.MaxListing = m.EncodedSize() / 2
	if _, err := st.GetListing(ctx, sum); !errors.As(err, &tooLarge) {
		t.Fatalf("GetTree of a listing over the limit: %v", err)
	}
}
