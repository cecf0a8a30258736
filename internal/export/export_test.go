package export

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func newStore(t *testing.T) (*store.Store, string) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return store.New(b), root
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(body, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// stored puts a tree into st and returns it loaded back.
func stored(t *testing.T, st *store.Store, files map[string]string) *Content {
	t.Helper()
	src := t.TempDir()
	writeTree(t, src, files)
	m, err := st.PutDir(context.Background(), src, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), st, m.Digest())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func noListing(context.Context) (*digest.Listing, error) {
	return nil, errors.New("the listing is not needed here")
}

func hashTree(ctx context.Context, dir string) (*digest.Listing, error) {
	return digest.HashTree(ctx, dir, digest.Options{})
}

var site = map[string]string{
	"index.html":     "<h1>v1</h1>\n",
	"css/site.css":   "body{}\n",
	"bin/run.sh":     "#!/bin/sh\necho hi\n",
	"latest.html":    "->index.html",
	"deep/a/b/c.txt": "c\n",
}

func TestDirectoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	if err := Check(ctx, st, c, Directory); err != nil {
		t.Fatal(err)
	}
	target, err := Target(filepath.Join(t.TempDir(), "out", "site"))
	if err != nil {
		t.Fatal(err)
	}
	old := fsUmask(0o077) // a strict umask must not change what is written
	defer fsUmask(old)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, c, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	m, err := hashTree(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest() != c.Digest {
		t.Fatalf("written tree hashes to %s, want %s", m.Digest(), c.Digest)
	}
	for name, want := range map[string]fs.FileMode{"index.html": 0o644, "bin/run.sh": 0o755, "css": fs.ModeDir | 0o755, ".": fs.ModeDir | 0o755} {
		fi, err := os.Lstat(filepath.Join(target, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if l, _ := os.Readlink(filepath.Join(target, "latest.html")); l != "index.html" {
		t.Errorf("latest.html -> %q, want index.html", l)
	}
	f, err := Inspect(ctx, target, Directory, c.Digest, hashTree, noListing)
	if err != nil || f.Status != Matches {
		t.Fatalf("Inspect = %+v, %v; want Matches", f, err)
	}
	// Nothing but the target is left in its parent (no temporaries).
	entries, _ := os.ReadDir(filepath.Dir(target))
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries, want only the target: %v", len(entries), entries)
	}
}

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mkStore(t *testing.T) string {
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "blobs", "sha256"), 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustResolve(t *testing.T, p string) string {
	r, err := fsguard.Resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return inodeOf(fi)
}

// realTarget is a fresh path named name as Target gives it (the temporary
// directory may be reached through a link, as /var is on macOS).
func realTarget(t *testing.T, name string) string {
	t.Helper()
	target, err := Target(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// written exports c as a directory to a fresh target and returns the
// target and what Remove needs to know of it.
func written(t *testing.T, st *store.Store, c *Content) (string, *Content) {
	t.Helper()
	target := realTarget(t, "www")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(context.Background(), c, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if w.Made == nil {
		t.Fatal("the Write did not identify the directories it made")
	}
	rec := *c
	rec.Made = w.Made
	return target, &rec
}

// filesAre checks the files under dir hold these bytes (a symlink: "->"
// and its target).
func filesAre(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, body := range want {
		p := filepath.Join(dir, filepath.FromSlash(name))
		var got string
		if target, ok := strings.CutPrefix(body, "->"); ok {
			l, err := os.Readlink(p)
			if err != nil || l != target {
				t.Errorf("%s -> %q (%v), want -> %q", name, l, err, target)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if got = string(b); err != nil || got != body {
			t.Errorf("%s holds %q (%v), want %q", name, got, err, body)
		}
	}
}

// The listing of what an export wrote comes from the store, or from the
// tree on disk while that still hashes to the digest written; otherwise
// it is an error that says what could not be read.
func TestWrittenListing(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	target, _ := written(t, st, c)
	m, err := WrittenListing(ctx, st, c.Digest, target, hashTree)
	if err != nil || m.Digest() != c.Digest {
		t.Fatalf("from the store: %v, %v", m, err)
	}
	other, _ := newStore(t) // a store without it
	if m, err = WrittenListing(ctx, other, c.Digest, target, hashTree); err != nil || m.Digest() != c.Digest {
		t.Fatalf("from the disk: %v, %v", m, err)
	}
	if err := os.WriteFile(filepath.Join(target, "index.html"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = WrittenListing(ctx, other, c.Digest, target, hashTree)
	if !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "the listing of "+c.Digest.String()+", what the export wrote, cannot be read from ") {
		t.Errorf("neither: got %v", err)
	}
}

// A Scratch write (a build's inputs, gone after a crash anyway) flushes
// nothing, not even its rename; an export makes its rename durable.
func TestScratchWritesSyncNoDirectory(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	synced := 0
	defer func(f func(string)) { syncDir = f }(syncDir)
	orig := syncDir
	syncDir = func(dir string) { synced++; orig(dir) }
	for _, scratch := range []bool{true, false} {
		synced = 0
		w := &Writer{St: st, Refs: archive.NewRefs(st), Scratch: scratch}
		if _, err := w.Write(ctx, c, Directory, filepath.Join(t.TempDir(), "out"), nil, nil); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[scratch]; synced != want {
			t.Errorf("scratch %v: %d directories synced, want %d", scratch, synced, want)
		}
	}
}
