package store_test

import (
	"context"
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
		t.Fatal("stored manifest differs from the hashed one")
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
