package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// The listings a publish relies on: the same source's first, newest
// first, then others', never one twice, at most maxKnownListings.
func TestKnownListings(t *testing.T) {
	s, _ := newSources(t, t.TempDir())
	sum := func(s string) digest.Sum { return digest.Bytes([]byte(s)) }
	if got := s.known("/site"); len(got) != 0 {
		t.Fatalf("nothing forgotten, yet %v", got)
	}
	s.Forgot("/other", sum("o1"))
	s.Forgot("/site", sum("s1"))
	s.Forgot("/other", sum("o2"))
	s.Forgot("/site", sum("s2"))
	s.Forgot("/site", sum("s2"))
	s.Forgot("/third", sum("t1"))
	got := s.known("/site")
	want := []digest.Sum{sum("s2"), sum("s1"), sum("t1"), sum("o2")}
	if !slices.Equal(got, want) {
		t.Errorf("known = %v, want %v", got, want)
	}
}

// TestSourcesRefuseWhatTheStoreCannotKeep: a local store inside a
// directory source is refused unless excluded, and so is a listing the
// store could not give back; nothing is written either way.
func TestSourcesRefuseWhatTheStoreCannotKeep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string]string{"index.html": "<h1>x</h1>\n", "css/site.css": "body{}\n"})
	s, st := newSources(t, filepath.Join(dir, ".immutable"))
	must(t, os.MkdirAll(filepath.Join(dir, ".immutable"), 0o755))

	var inside *StoreInsideSourceError
	if _, err := s.Hash(ctx, Source{Path: dir}); !errors.As(err, &inside) || inside.Rel != ".immutable" {
		t.Fatalf("store inside: %v", err)
	}
	if _, _, err := s.Put(ctx, Source{Path: dir}, nil); !errors.As(err, &inside) {
		t.Fatalf("store inside, at apply: %v", err)
	}
	c, err := s.Hash(ctx, Source{Path: dir, Excludes: []string{".immutable"}})
	if err != nil || c.Count != 2 {
		t.Fatalf("store excluded: %v %+v", err, c)
	}

	old := store.MaxListing
	store.MaxListing = 10
	defer func() { store.MaxListing = old }()
	var tooLarge *TooLargeError
	if _, err := s.Hash(ctx, Source{Path: dir, Excludes: []string{".immutable"}}); !errors.As(err, &tooLarge) || tooLarge.Path != dir {
		t.Fatalf("too large: %v", err)
	}
	if keys, _ := st.Backend().List(ctx, ""); len(keys) != 0 {
		t.Fatalf("written: %v", keys)
	}
}

// TestPutChecksThePlan: content changed since it was planned is refused
// with what it is now, and no listing names it; the planned content is
// stored and published.
func TestPutChecksThePlan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.txt": "planned"})
	s, st := newSources(t, t.TempDir())
	planned, err := s.Hash(ctx, Source{Path: dir})
	must(t, err)

	other := digest.Bytes([]byte("another plan"))
	var changed *ChangedError
	c, _, err := s.Put(ctx, Source{Path: dir}, &other)
	if !errors.As(err, &changed) || changed.Now != planned.Sum || c.Sum != planned.Sum {
		t.Fatalf("changed tree: %v", err)
	}
	if k, _ := st.Lookup(ctx, planned.Sum); k != store.Missing {
		t.Fatal("a tree that is not the planned one was published")
	}
	c, _, err = s.Put(ctx, Source{Path: dir}, &planned.Sum)
	if err != nil || c.Sum != planned.Sum {
		t.Fatalf("planned tree: %v", err)
	}
	if k, _ := st.Lookup(ctx, planned.Sum); k != store.Tree {
		t.Fatalf("the planned tree is %v in the store", k)
	}

	file := filepath.Join(dir, "a.txt")
	if _, _, err := s.Put(ctx, Source{Path: file}, &other); !errors.As(err, &changed) {
		t.Fatalf("changed file: %v", err)
	}
	if c, _, err := s.Put(ctx, Source{Path: file}, nil); err != nil || c.Sum != digest.Bytes([]byte("planned")) {
		t.Fatalf("file: %v", err)
	}
	if c, err := s.PutInline(ctx, []byte("inline")); err != nil || c.Sum != digest.Bytes([]byte("inline")) {
		t.Fatalf("inline: %v", err)
	}
	if k, _ := st.Lookup(ctx, digest.Bytes([]byte("inline"))); k != store.Blob {
		t.Fatalf("inline content is %v in the store", k)
	}
}
