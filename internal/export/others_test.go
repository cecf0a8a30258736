package export

import (
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
)

// TestReplaceKeepsWhatOthersAdded: files, links and directories someone
// added inside an export survive a replacement (linked, not copied, into
// the new tree before the swap); one at a path the new content needs, or a
// replacement by an archive, refuses the write and changes nothing.
func TestReplaceKeepsWhatOthersAdded(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	v2files := map[string]string{"index.html": "<h1>v2</h1>\n", "css/site.css": "body{}\n", "css/new.css": "new\n"}
	v2 := stored(t, st, v2files)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := filepath.Join(t.TempDir(), "site")
	if _, err := w.Write(ctx, v1, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	writeTree(t, target, map[string]string{
		"uploads/a/photo.jpg": "jpeg",
		"css/theirs.css":      "theirs",
		"robots.txt":          "->index.html",
	})
	ino := inode(t, filepath.Join(target, "uploads", "a", "photo.jpg"))
	if _, err := w.Write(ctx, v2, Directory, target, v1, nil); err != nil {
		t.Fatal(err)
	}
	if w.Kept != 3 {
		t.Errorf("kept %d paths of others, want 3", w.Kept)
	}
	if got := inode(t, filepath.Join(target, "uploads", "a", "photo.jpg")); got != ino {
		t.Error("a file of others' was copied, not linked")
	}
	if l, err := os.Readlink(filepath.Join(target, "robots.txt")); err != nil || l != "index.html" {
		t.Errorf("a link of others' is %q, %v", l, err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "css", "theirs.css")); string(b) != "theirs" {
		t.Errorf("a file of others' beside the export's is %q", b)
	}
	for _, gone := range []string{"bin", "deep", "latest.html"} {
		if _, err := os.Lstat(filepath.Join(target, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of the old content is left: %v", gone, err)
		}
	}
	found, err := Inspect(ctx, target, Directory, v2.Digest, hashTree, func(context.Context) (*digest.Listing, error) { return v2.Listing, nil })
	if err != nil || found.Status != Matches {
		t.Errorf("others' files count as drift: %+v %v", found, err)
	}
	// A path the new content needs.
	v3 := stored(t, st, map[string]string{"index.html": "v3", "uploads": "now a file"})
	before := inode(t, target)
	var conflict *ConflictError
	if _, err := w.Write(ctx, v3, Directory, target, v2, nil); !errors.As(err, &conflict) || conflict.Paths[0] != "uploads/" {
		t.Errorf("Write over others' directory = %v, want a ConflictError naming uploads/", err)
	}
	if _, err := w.Write(ctx, v2, Zip, target, v2, nil); !errors.As(err, &conflict) {
		t.Errorf("Write of a zip over a directory holding others' files = %v, want a ConflictError", err)
	}
	if inode(t, target) != before {
		t.Error("a refused write changed the target")
	}
	// The target itself replaced by a symlink: named as what it is now.
	aside := target + ".real"
	if err := os.Rename(target, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(aside, target); err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(ctx, v3, Directory, target, v2, nil)
	if want := target + " is now a symbolic link, which the export did not write; the export wrote a directory there"; err == nil ||
		!strings.HasPrefix(err.Error(), want) {
		t.Errorf("Write over the target replaced by a symlink = %v, want %q", err, want)
	}
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, target); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
		t.Errorf("a refused write left %v", entries)
	}
}

// What someone adds inside the export while the new content is being
// written (after the carry-over snapshot, before the swap) is not lost:
// it ends up in the new tree.
func TestReplaceKeepsWhatIsAddedDuringTheWrite(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	v2 := stored(t, st, map[string]string{"index.html": "<h1>v2</h1>\n", "css/site.css": "body{}\n"})
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := filepath.Join(t.TempDir(), "site")
	if _, err := w.Write(ctx, v1, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	added := func() error {
		writeTree(t, target, map[string]string{"uploads/late.jpg": "late", "css/late.css": "late css"})
		return nil
	}
	if _, err := w.Write(ctx, v2, Directory, target, v1, added); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"uploads/late.jpg": "late", "css/late.css": "late css", "index.html": "<h1>v2</h1>\n"} {
		if b, err := os.ReadFile(filepath.Join(target, p)); err != nil || string(b) != want {
			t.Errorf("%s after the swap: %q, %v; want %q", p, b, err, want)
		}
	}
	if w.SetAside != "" {
		t.Errorf("set aside %s, though every added path was free in the new tree", w.SetAside)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
		t.Errorf("the old content or temporaries are left: %v", entries)
	}

	// An added path the new content also has: kept aside, not deleted.
	v3 := stored(t, st, map[string]string{"index.html": "<h1>v3</h1>\n", "css/site.css": "body{}\n", "clash.txt": "ours"})
	clash := func() error {
		writeTree(t, target, map[string]string{"clash.txt": "theirs"})
		return nil
	}
	if _, err := w.Write(ctx, v3, Directory, target, v2, clash); err != nil {
		t.Fatal(err)
	}
	if w.SetAside == "" {
		t.Fatal("a clashing path added during the write was not set aside")
	}
	b, err := os.ReadFile(filepath.Join(w.SetAside, "site", "clash.txt"))
	if err != nil || string(b) != "theirs" {
		t.Errorf("the set-aside copy holds %q, %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "clash.txt")); string(b) != "ours" {
		t.Errorf("the export's clash.txt is %q", b)
	}
}

// A directory of others' that the new content has too, holding a file the
// new content needs, is a ConflictError naming the file, not a raw
// "file exists"; nothing changes.
func TestCarryOverClashInsideADirectory(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	v2 := stored(t, st, map[string]string{"index.html": "v2", "js/app.js": "ours"})
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := filepath.Join(t.TempDir(), "site")
	if _, err := w.Write(ctx, v1, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	writeTree(t, target, map[string]string{"js/app.js": "theirs"})
	var conflict *ConflictError
	_, err := w.Write(ctx, v2, Directory, target, v1, nil)
	if !errors.As(err, &conflict) || !slices.Contains(conflict.Paths, "js/app.js") {
		t.Fatalf("Write = %v, want a ConflictError naming js/app.js", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "js", "app.js")); string(b) != "theirs" {
		t.Errorf("their js/app.js is %q", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
		t.Errorf("a refused write left %v", entries)
	}
}
