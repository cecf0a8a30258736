package export

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

func noListing(context.Context) (*digest.Manifest, error) {
	return nil, errors.New("the listing is not needed here")
}

func hashTree(ctx context.Context, dir string) (*digest.Manifest, error) {
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

func TestRemoveOnlyWhatWasWritten(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	target := realTarget(t, "site")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, c, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Someone adds a file, and replaces a written directory with a link
	// to a directory of theirs.
	mine := t.TempDir()
	writeTree(t, mine, map[string]string{"c.txt": "keep me"})
	writeTree(t, target, map[string]string{"css/extra.css": "mine"})
	if err := os.RemoveAll(filepath.Join(target, "deep", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mine, filepath.Join(target, "deep", "a", "b")); err != nil {
		t.Fatal(err)
	}
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(mine, "c.txt")); err != nil || string(b) != "keep me" {
		t.Errorf("Remove followed a symlink out of the export: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(target, "css", "extra.css")); err != nil {
		t.Errorf("Remove deleted a file it did not write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "index.html")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("index.html is still there: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(target, "deep", "a", "b")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Remove deleted a symlink it did not write where its directory was: %v", err)
	}
	if len(kept) == 0 {
		t.Error("Remove reported nothing kept")
	}
	// A clean export is removed entirely.
	target2 := realTarget(t, "site")
	if _, err := w.Write(ctx, c, Directory, target2, nil, nil); err != nil {
		t.Fatal(err)
	}
	if kept, err := Remove(ctx, target2, Directory, c); err != nil || len(kept) != 0 {
		t.Errorf("Remove of a clean export kept %v, %v", kept, err)
	}
	if _, err := os.Lstat(target2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the export's directory is left: %v", err)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return inodeOf(fi)
}

// TestPortableRenames runs the fallbacks used where renameat2 is missing.
func TestPortableRenames(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTree(t, a, map[string]string{"new": "new"})
	writeTree(t, b, map[string]string{"old": "old"})
	if err := renameNoReplacePortable(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("renameNoReplacePortable over an existing path = %v", err)
	}
	if err := exchangePortable(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, "new")); err != nil {
		t.Errorf("after the exchange the target lacks the new content: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a, "old", "old")); err != nil {
		t.Errorf("after the exchange the old content is not where the caller removes it: %v", err)
	}
	c := filepath.Join(dir, "c")
	if err := exchangePortable(b, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c, "new")); err != nil {
		t.Errorf("an exchange onto a free path did not rename: %v", err)
	}
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

// Issue 19, item 2: export, rm -rf, the same paths made again with other
// bytes, destroy. The user's files are not the export's: they stay, with
// their bytes, and are named with the directories made again.
func TestRemoveKeepsFilesTheUserMadeAgain(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	target, c := written(t, st, stored(t, st, site))
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{"index.html": "<h1>mine</h1>\n", "css/site.css": "body{color:red}\n"}
	writeTree(t, target, mine)
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil {
		t.Fatal(err)
	}
	filesAre(t, target, mine)
	want := []Kept{
		{target, keptRemade},
		{"css/", keptRemade},
		{"css/site.css", keptChanged},
		{"index.html", keptChanged},
	}
	if !slices.Equal(kept, want) {
		t.Errorf("kept\n %v\nwant\n %v", kept, want)
	}
}

// Each kind of change to an export's tree, and what destroy does with it.
func TestRemoveOnlyWhatIsStillWritten(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	target, c := written(t, st, stored(t, st, site))
	outside := filepath.Join(t.TempDir(), "secret")
	writeTree(t, filepath.Dir(outside), map[string]string{"secret": "body{}\n"}) // the bytes of css/site.css
	in := func(name string) string { return filepath.Join(target, filepath.FromSlash(name)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Replaced by a new file with the same bytes: byte for byte what the
	// export wrote, so it goes.
	must(os.Remove(in("index.html")))
	writeTree(t, target, map[string]string{"index.html": site["index.html"]})
	// Made not executable: the same bytes, so it goes too.
	must(os.Chmod(in("bin/run.sh"), 0o644))
	// Replaced by a link to a file outside with the same bytes: kept, and
	// not followed.
	must(os.Remove(in("css/site.css")))
	must(os.Symlink(outside, in("css/site.css")))
	// A listed link pointed elsewhere.
	must(os.Remove(in("latest.html")))
	must(os.Symlink("/etc/passwd", in("latest.html")))
	// A directory replaced (the same name made again) holding a listed
	// file with the listed bytes: the file goes, the directories stay.
	must(os.RemoveAll(in("deep/a")))
	writeTree(t, target, map[string]string{"deep/a/b/c.txt": site["deep/a/b/c.txt"]})
	// Added by someone.
	writeTree(t, target, map[string]string{"extra/notes.txt": "mine", "css/print.css": "mine"})
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kept{
		{"css/site.css", "now a symbolic link, not the file the export wrote"},
		{"deep/a/", keptRemade},
		{"deep/a/b/", keptRemade},
		{"latest.html", keptChanged},
		{"css/print.css", keptOthers},
		{"extra/", keptOthers},
	}
	if !slices.Equal(kept, want) {
		t.Errorf("kept\n %v\nwant\n %v", kept, want)
	}
	filesAre(t, target, map[string]string{"css/print.css": "mine", "extra/notes.txt": "mine", "latest.html": "->/etc/passwd",
		"css/site.css": "->" + outside})
	filesAre(t, filepath.Dir(outside), map[string]string{"secret": "body{}\n"})
	for _, gone := range []string{"index.html", "bin", "deep/a/b/c.txt"} {
		if _, err := os.Lstat(in(gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s, byte for byte the export's, is left: %v", gone, err)
		}
	}
	// Once the user's paths are gone, what is left of the export's (its
	// own target) goes on the next destroy.
	for _, p := range []string{"css", "extra", "latest.html", "deep"} {
		must(os.RemoveAll(in(p)))
	}
	if kept, err := Remove(ctx, target, Directory, c); err != nil || len(kept) != 0 {
		t.Fatalf("Remove of the export's empty directory = %v, %v", kept, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the export's own directory is left: %v", err)
	}
}

// A whole tree put back byte for byte (rm -rf, then a copy of the same
// files): every file goes, the directories made again stay, named.
func TestRemoveKeepsDirectoriesMadeAgain(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	files := map[string]string{"index.html": "<h1>v1</h1>\n", "css/site.css": "body{}\n"}
	target, c := written(t, st, stored(t, st, files))
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	writeTree(t, target, files)
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Kept{{target, keptRemade}, {"css/", keptRemade}}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if entries, err := os.ReadDir(filepath.Join(target, "css")); err != nil || len(entries) != 0 {
		t.Errorf("css/ holds %v (%v), want it empty", entries, err)
	}
}

// A file changed after it was checked and before it is removed is the
// user's: kept.
func TestRemoveRechecksBeforeRemoving(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	target, c := written(t, st, stored(t, st, map[string]string{"index.html": "<h1>v1</h1>\n", "about.html": "about\n"}))
	checkedHook = func(name string) {
		p := filepath.Join(target, name)
		switch name {
		case "about.html": // edited in place (another size: mtime may not tick in between)
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = f.WriteString("edited\n")
				err = errors.Join(err, f.Close())
			}
			if err != nil {
				t.Error(err)
			}
		case "index.html": // replaced by another file with the same bytes
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(p, []byte("<h1>v1</h1>\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { checkedHook = nil }()
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Kept{{"about.html", keptChanged}, {"index.html", keptChanged}}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	filesAre(t, target, map[string]string{"index.html": "<h1>v1</h1>\n", "about.html": "about\nedited\n"})
}

// A file export is removed only while it is the file written: one put
// back with the same bytes goes; a link to a file outside with those
// bytes, a directory, or other bytes stay, and the link is not followed.
func TestRemoveFileExportOnlyWhileWritten(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := realTarget(t, "site.zip")
	sum, err := w.Write(ctx, c, Zip, target, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	zipBytes, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "keep.zip")
	if err := os.WriteFile(outside, zipBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		put  func() error
		kept string // "" when removed
	}{
		"same bytes": {func() error { return os.WriteFile(target, zipBytes, 0o600) }, ""},
		"other bytes": {func() error { return os.WriteFile(target, []byte("mine"), 0o644) },
			keptChanged},
		"link out": {func() error { return os.Symlink(outside, target) },
			"now a symbolic link, not the file the export wrote"},
		"directory": {func() error { return os.Mkdir(target, 0o755) },
			"now a directory, not the file the export wrote"},
	} {
		if err := os.RemoveAll(target); err != nil {
			t.Fatal(err)
		}
		if err := tc.put(); err != nil {
			t.Fatal(err)
		}
		kept, err := Remove(ctx, target, Zip, &Content{Written: &sum})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tc.kept == "" {
			if len(kept) != 0 {
				t.Errorf("%s: kept %v", name, kept)
			}
			if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: left: %v", name, err)
			}
			continue
		}
		if want := []Kept{{target, tc.kept}}; !slices.Equal(kept, want) {
			t.Errorf("%s: kept %v, want %v", name, kept, want)
		}
		if _, err := os.Lstat(target); err != nil {
			t.Errorf("%s: removed: %v", name, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || !bytes.Equal(b, zipBytes) {
		t.Errorf("the file the link pointed to: %v", err)
	}
}

// The device number is not compared where birth times tell directories
// apart (btrfs, overlayfs and NFS number devices anew at each mount);
// where there are none, the target is told by device and inode, the
// directories inside it not at all.
func TestRemoveTellsDirectoriesWithoutBirthTimes(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	files := map[string]string{"index.html": "<h1>v1</h1>\n", "css/site.css": "body{}\n"}
	target, c := written(t, st, stored(t, st, files))
	if c.Made.Born == 0 {
		t.Skip("this filesystem keeps no birth times: the first case needs them")
	}
	c.Made.Dev++ // mounted again under another number
	if kept, err := Remove(ctx, target, Directory, c); err != nil || len(kept) != 0 {
		t.Fatalf("Remove after a new device number kept %v, %v", kept, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the export's directory is left: %v", err)
	}

	target, c = written(t, st, stored(t, st, files))
	c.Made.Born, c.Made.Until = 0, 0 // as on a filesystem without them
	if err := os.RemoveAll(filepath.Join(target, "css")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, target, map[string]string{"css/site.css": "body{}\n"})
	if kept, err := Remove(ctx, target, Directory, c); err != nil || len(kept) != 0 {
		t.Fatalf("Remove without birth times kept %v, %v (css/ cannot be told, the target is the export's)", kept, err)
	}
	target, c = written(t, st, stored(t, st, files))
	c.Made.Born, c.Made.Until = 0, 0
	c.Made.Ino++ // another directory
	kept, err := Remove(ctx, target, Directory, c)
	if want := []Kept{{target, keptRemade}}; err != nil || !slices.Equal(kept, want) {
		t.Fatalf("Remove of a directory with another inode = %v, %v; want %v", kept, err, want)
	}
}

// A directory above the export replaced by a link since it was written
// leads somewhere else (here the export's own tree, moved): nothing is
// removed through the link.
func TestRemoveDoesNotFollowALinkAboveTheTarget(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	files := map[string]string{"index.html": "<h1>v1</h1>\n", "css/site.css": "body{}\n"}
	target, c := written(t, st, stored(t, st, files))
	parent := filepath.Dir(target)
	elsewhere := filepath.Join(filepath.Dir(parent), "elsewhere")
	if err := os.Rename(parent, elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, parent); err != nil {
		t.Fatal(err)
	}
	kept, err := Remove(ctx, target, Directory, c)
	if err != nil || len(kept) != 1 || !strings.HasPrefix(kept[0].Why, "reached through a symbolic link now") {
		t.Fatalf("Remove = %v, %v; want the target kept, reached through a link", kept, err)
	}
	filesAre(t, filepath.Join(elsewhere, "www"), files)
}
