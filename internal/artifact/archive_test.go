package artifact

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestSourceOpenerVerifies: the archive is built from the source files,
// and an entry whose bytes no longer match the stored listing fails the
// build instead of producing an archive of other content.
func TestSourceOpenerVerifies(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("stored"), 0o644))
	must(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	open := sourceOpener(dir, true)
	read := func(e digest.Entry) error {
		rc, err := open(context.Background(), e)
		if err != nil {
			return err
		}
		defer func() { _ = rc.Close() }() // read-only: nothing to lose
		_, err = io.ReadAll(rc)
		return err
	}
	if err := read(digest.Entry{Path: "a.txt", SHA256: digest.Bytes([]byte("stored"))}); err != nil {
		t.Fatalf("matching file: %v", err)
	}
	if err := read(digest.Entry{Path: "link", Kind: digest.KindSymlink, SHA256: digest.Bytes([]byte("a.txt"))}); err != nil {
		t.Fatalf("matching symlink: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("edited"), 0o644))
	var mm *store.MismatchError
	if err := read(digest.Entry{Path: "a.txt", SHA256: digest.Bytes([]byte("stored"))}); !errors.As(err, &mm) {
		t.Fatalf("a file changed since it was stored: %v", err)
	}
}

// TestCheckArchive: what an archive cannot hold is refused at plan — a
// link leaving the tree, a name unsafe in an archive, a file whose name
// the digest spec cannot encode — and the rest passes.
func TestCheckArchive(t *testing.T) {
	ctx := context.Background()
	memo := statcache.NewMemo(nil)
	hash := func(p string) *Content {
		t.Helper()
		c, err := Hash(ctx, memo, Source{Path: p})
		must(t, err)
		return c
	}
	ok := t.TempDir()
	write(t, ok, map[string]string{"a.txt": "a"})
	must(t, os.Symlink("a.txt", filepath.Join(ok, "link")))
	if err := CheckArchive(ok, hash(ok)); err != nil {
		t.Errorf("a tree with an inner link: %v", err)
	}
	if err := CheckArchive(filepath.Join(ok, "a.txt"), hash(filepath.Join(ok, "a.txt"))); err != nil {
		t.Errorf("a file: %v", err)
	}

	leaving := t.TempDir()
	must(t, os.Symlink("/etc/passwd", filepath.Join(leaving, "passwd")))
	var link *archive.LinkError
	if err := CheckArchive(leaving, hash(leaving)); !errors.As(err, &link) {
		t.Errorf("a link leaving the tree: %v", err)
	}

	unsafe := t.TempDir()
	write(t, unsafe, map[string]string{"..\\evil": "x"})
	var name *archive.UnsafeNameError
	if err := CheckArchive(unsafe, hash(unsafe)); !errors.As(err, &name) {
		t.Errorf("an unsafe name: %v", err)
	}

	newline := filepath.Join(t.TempDir(), "a\nb")
	must(t, os.WriteFile(newline, []byte("x"), 0o644))
	var fileName *ArchiveNameError
	if err := CheckArchive(newline, hash(newline)); !errors.As(err, &fileName) {
		t.Errorf("a file named with a newline: %v", err)
	}
}

// TestOutputGuard: an output path inside the store, the source, or a
// directory source (unless excluded) is refused; beside them it is not.
func TestOutputGuard(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write(t, src, map[string]string{"a.txt": "a"})
	s, _ := newSources(t, filepath.Join(dir, "store"))
	guard := s.OutputGuard(src, true, []string{"build/**"})
	for _, refused := range []string{filepath.Join(dir, "store", "x.zip"), src, filepath.Join(src, "x.zip")} {
		if err := guard(refused); err == nil {
			t.Errorf("%s was allowed", refused)
		}
	}
	for _, allowed := range []string{filepath.Join(dir, "out", "x.zip"), filepath.Join(src, "build", "x.zip")} {
		if err := guard(allowed); err != nil {
			t.Errorf("%s: %v", allowed, err)
		}
	}
}

// TestStoreArchive: an archive is built once and reused; a planned one
// the store does not hold is refused; the copy written is that archive.
func TestStoreArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "handler.py")
	write(t, dir, map[string]string{"handler.py*": "def handler(e, c): return 1\n"})
	s, st := newSources(t, filepath.Join(dir, "store"))
	c, _, err := s.Put(ctx, Source{Path: src}, nil)
	must(t, err)
	sum, err := s.StoreArchive(ctx, archive.Zip, src, c, nil, false)
	must(t, err)
	if again, err := s.StoreArchive(ctx, archive.Zip, src, c, &sum, true); err != nil || again != sum {
		t.Fatalf("stored again: %v, %v", again, err)
	}
	if ok, err := st.HasListing(ctx, c.Listing.Digest()); err != nil || !ok {
		t.Fatalf("a file's one-entry listing is not stored: %v", err)
	}
	wrong := digest.Bytes([]byte("another archive"))
	var changed *ArchiveChangedError
	if _, err := s.StoreArchive(ctx, archive.Zip, src, c, &wrong, true); !errors.As(err, &changed) || changed.Stored != sum {
		t.Fatalf("another planned archive: %v", err)
	}
	out := filepath.Join(dir, "out", "handler.zip")
	must(t, s.WriteArchive(ctx, archive.Zip, c, sum, out, s.OutputGuard(src, false, nil)))
	if got, _, err := digest.HashFile(ctx, out); err != nil || got != sum {
		t.Fatalf("the copy is %v (%v), not %v", got, err, sum)
	}
}
