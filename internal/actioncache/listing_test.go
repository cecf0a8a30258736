package actioncache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestArchiveListing: a tree output's archive holds its listing (given,
// or read back from the store), a file output's its one-entry listing
// named after the output, executable for an exec.
func TestArchiveListing(t *testing.T) {
	ctx := context.Background()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha"), 0o644); err != nil {
		t.Fatal(err)
	}
	man, err := st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tree := &Record{Output: man.Digest(), Type: TypeTree, Size: man.Size()}
	for _, given := range []*digest.Listing{man, nil} {
		got, err := tree.ArchiveListing(ctx, st, "dist", given)
		if err != nil || got.Digest() != man.Digest() {
			t.Fatalf("tree listing (given %v) = %v, %v; want %s", given != nil, got, err, man.Digest())
		}
	}
	missing := &Record{Output: digest.Bytes([]byte("not stored")), Type: TypeTree}
	if _, err := missing.ArchiveListing(ctx, st, "dist", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("listing of a tree not stored = %v, want store.ErrNotFound", err)
	}
	for typ, kind := range map[OutputType]digest.Kind{TypeFile: digest.KindFile, TypeExec: digest.KindExec, "": digest.KindFile} {
		rec := &Record{Output: digest.Bytes([]byte("x")), Type: typ, Size: 1}
		got, err := rec.ArchiveListing(ctx, st, "out/app.zip", nil)
		if err != nil || len(got.Entries) != 1 || got.Entries[0].Path != "app.zip" || got.Entries[0].Kind != kind {
			t.Fatalf("%q listing = %+v, %v; want one %s entry app.zip", typ, got, err, kind)
		}
	}
}

// TestChangedParts: a component whose digest differs, a new one and a
// gone one are named, sorted; equal ones are not.
func TestChangedParts(t *testing.T) {
	a, b := digest.Bytes([]byte("a")), digest.Bytes([]byte("b"))
	planned := map[string]string{"command": a.String(), "tool/go": a.String(), "input/old": a.String(), "salt": "not a digest"}
	now := map[string]digest.Sum{"command": a, "tool/go": b, "input/new": a, "salt": a}
	got := strings.Join(ChangedParts(planned, now), ", ")
	if want := "input/new, input/old, salt, tool/go"; got != want {
		t.Fatalf("ChangedParts = %q, want %q", got, want)
	}
	if got := ChangedParts(map[string]string{"command": a.String()}, map[string]digest.Sum{"command": a}); len(got) != 0 {
		t.Fatalf("ChangedParts of equal parts = %q, want none", got)
	}
}

// TestUntrusted: a corrupt record, or an output it names gone or damaged,
// makes the record untrusted; an output collected before anything was
// recorded, or another error, does not.
func TestUntrusted(t *testing.T) {
	for err, want := range map[error]bool{
		&CorruptError{Key: "k", Reason: "r"}:                       true,
		&MissingOutputError{Key: "k"}:                              true,
		&DamagedOutputError{Key: "k", Err: errors.New("mismatch")}: true,
		&MissingOutputError{Key: "k", Unrecorded: true}:            false,
		errors.New("network down"):                                 false,
		fmt.Errorf("looking up: %w", &CorruptError{Key: "k"}):      true,
	} {
		if got := Untrusted(err); got != want {
			t.Errorf("Untrusted(%v) = %v, want %v", err, got, want)
		}
	}
}
