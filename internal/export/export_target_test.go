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
