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
)

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

// Remove never deletes through a link that stays inside the export: with
// css replaced by a link to the user's uploads/, css/site.css names the
// user's file.
func TestRemoveDoesNotFollowInnerLinks(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := realTarget(t, "site")
	if _, err := w.Write(ctx, v1, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(target, "css")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, target, map[string]string{"uploads/site.css": "the user's", "css": "->uploads"})
	kept, err := Remove(ctx, target, Directory, v1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "uploads", "site.css")); err != nil || string(b) != "the user's" {
		t.Errorf("the user's uploads/site.css: %q, %v", b, err)
	}
	// The link is named, and what it points at (the user's uploads/),
	// not the listed path seen through it.
	want := []Kept{{"css", "now a symbolic link, not the directory the export wrote"}, {"uploads/", keptOthers}}
	if !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if _, err := os.Lstat(filepath.Join(target, "index.html")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("index.html, the export's, is left: %v", err)
	}
}

// Destroy of a file export leaves a file the user put in its place.
func TestRemoveKeepsAFileThatIsNotTheOneWritten(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := realTarget(t, "site.zip")
	sum, err := w.Write(ctx, v1, Zip, target, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("the user's own"), 0o644); err != nil {
		t.Fatal(err)
	}
	kept, err := Remove(ctx, target, Zip, &Content{Written: &sum})
	if err != nil || len(kept) != 1 {
		t.Fatalf("Remove = %v, %v; want the file kept and named", kept, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "the user's own" {
		t.Errorf("the user's file is %q", b)
	}
	// The file it wrote is removed.
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, v1, Zip, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if kept, err := Remove(ctx, target, Zip, &Content{Written: &sum}); err != nil || len(kept) != 0 {
		t.Fatalf("Remove of the written zip = %v, %v", kept, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the written zip is left: %v", err)
	}
}

// GroupKept keeps Remove's order: reasons as they first appear, each
// one's paths as they come.
func TestGroupKept(t *testing.T) {
	got := GroupKept([]Kept{{"b", keptChanged}, {"a/", keptRemade}, {"c", keptChanged}, {"x", keptOthers}})
	want := []KeptFor{{keptChanged, []string{"b", "c"}}, {keptRemade, []string{"a/"}}, {keptOthers, []string{"x"}}}
	if !slices.EqualFunc(got, want, func(a, b KeptFor) bool { return a.Why == b.Why && slices.Equal(a.Paths, b.Paths) }) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := GroupKept(nil); len(got) != 0 {
		t.Errorf("nothing kept: got %v", got)
	}
}
