package export

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
)

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
