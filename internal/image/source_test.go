package image

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// goldenDir writes the golden tree to disk.
func goldenDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"index.html": "<h1>hi</h1>\n", "bin/run.sh": "#!/bin/sh\necho run\n", "a/b/c.txt": "c\n"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("index.html", filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	root := t.TempDir()
	b, err := filestore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return store.New(b), root
}

// TestSourcesAgree: the golden tree on disk, stored, and in memory gives
// the same layer from every source.
func TestSourcesAgree(t *testing.T) {
	ctx := context.Background()
	dir := goldenDir(t)
	st, _ := newStore(t)
	l, err := st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := newMemSource()
	want, _ := writeLayer(t, m, LayerSpec{Tree: fixedTree(m), Path: "/srv/www", UID: 1000, GID: 1000, Compression: Gzip})
	spec := LayerSpec{Tree: l.Digest(), Path: "/srv/www", UID: 1000, GID: 1000, Compression: Gzip}
	for name, src := range map[string]Source{
		"store": StoreSource(st),
		"dir":   DirSource(dir, l),
		"multi": MultiSource(DirSource(t.TempDir(), &digest.Listing{}), StoreSource(st)),
	} {
		got, err := DescribeLayer(ctx, src, spec)
		if err != nil || got.Descriptor != want.Descriptor || got.DiffID != want.DiffID {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}

	// A file: from the store (its size listed) and from disk.
	file := filepath.Join(dir, "bin/run.sh")
	sum, size, err := st.PutFile(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	fspec := LayerSpec{Tree: sum, Path: "/usr/bin/run", Compression: Gzip}
	a, err := DescribeLayer(ctx, StoreSource(st), fspec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DescribeLayer(ctx, FileSource(file, sum, size), fspec)
	if err != nil || a != b {
		t.Errorf("a file from the store %+v, from disk %+v, %v", a, b, err)
	}
	if _, err := DescribeLayer(ctx, StoreSource(st), LayerSpec{Tree: digest.Bytes([]byte("nothing")), Path: "/x", Compression: Gzip}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a missing tree: %v", err)
	}
}

// TestStoreSourceDamaged: a blob altered in the store fails the layer,
// naming the entry.
func TestStoreSourceDamaged(t *testing.T) {
	ctx := context.Background()
	dir := goldenDir(t)
	st, root := newStore(t)
	l, err := st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loc, ok := st.Locate(store.BlobKey(digest.Bytes([]byte("c\n"))))
	if !ok || !strings.HasPrefix(loc.Path, root) {
		t.Fatalf("blob at %+v", loc)
	}
	if err := os.Chmod(loc.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loc.Path, []byte("C\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = DescribeLayer(ctx, StoreSource(st), LayerSpec{Tree: l.Digest(), Path: "/srv", Compression: Gzip})
	var ce *ContentError
	if !errors.As(err, &ce) || ce.Name != "srv/a/b/c.txt" {
		t.Errorf("got %v; want a ContentError for srv/a/b/c.txt", err)
	}
}

// TestDirSourceRefusesSwaps: a file replaced by a symlink, or a directory
// by a symlink leading out of the tree, is not read.
func TestDirSourceRefusesSwaps(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, dir, outside string)
		want string
	}{
		{"file to symlink", func(t *testing.T, dir, outside string) {
			p := filepath.Join(dir, "index.html")
			must(t, os.Remove(p))
			must(t, os.Symlink(filepath.Join(outside, "index.html"), p))
		}, "changed while it was being read"},
		{"dir to symlink out", func(t *testing.T, dir, outside string) {
			must(t, os.RemoveAll(filepath.Join(dir, "a")))
			must(t, os.Symlink(outside, filepath.Join(dir, "a")))
		}, "escapes"},
		{"symlink to file", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "current")
			must(t, os.Remove(p))
			must(t, os.WriteFile(p, []byte("index.html"), 0o644))
		}, "changed while it was being read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := goldenDir(t)
			l, err := digest.HashTree(ctx, dir, digest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Outside: the same content, so only the opening can refuse it.
			outside := goldenDir(t)
			must(t, os.MkdirAll(filepath.Join(outside, "b"), 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "b/c.txt"), []byte("c\n"), 0o644))
			tc.swap(t, dir, outside)
			_, err = DescribeLayer(ctx, DirSource(dir, l), LayerSpec{Tree: l.Digest(), Path: "/srv", Compression: Gzip})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLayerMatchesPython: scripts/layer-diffid.py, an implementation of
// the spec with Python's tarfile (printed in the digest spec guide), gives
// the diff_id WriteLayer gives, for a tree with nested directories, an
// executable, a symlink, a name split between USTAR's prefix and name
// fields, an owner and a path below root-owned directories.
func TestLayerMatchesPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the spec's independent implementation cannot run")
	}
	ctx := context.Background()
	dir := goldenDir(t)
	long := strings.Repeat("d", 70) + "/" + strings.Repeat("f", 70)
	must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(long)), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, long), []byte("long\n"), 0o644))
	l, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	layer, err := DescribeLayer(ctx, DirSource(dir, l), LayerSpec{Tree: l.Digest(), Path: "/srv/www", UID: 1000, GID: 1001, Compression: Gzip})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "../../scripts/layer-diffid.py", dir, "/srv/www", "1000", "1001").CombinedOutput()
	if err != nil {
		t.Fatalf("layer-diffid.py: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != layer.DiffID.String() {
		t.Errorf("layer-diffid.py says %s, WriteLayer %s", got, layer.DiffID)
	}
}
