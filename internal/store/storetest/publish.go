package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// tree writes n small files (and a symlink) into a new directory and
// returns it with its listing.
func tree(t *testing.T, n int) (string, *digest.Listing) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%04d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, "file %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Two files with the same bytes: one blob.
	if err := os.WriteFile(filepath.Join(dir, "copy.txt"), []byte("file 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("copy.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir, rehash(t, dir)
}

func rehash(t *testing.T, dir string) *digest.Listing {
	t.Helper()
	m, err := digest.HashTree(context.Background(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func distinct(m *digest.Listing) int {
	seen := map[digest.Sum]bool{}
	for _, e := range m.Entries {
		seen[e.SHA256] = true
	}
	return len(seen)
}

// invariant fails the test unless every stored listing's blobs are stored.
func invariant(t *testing.T, s *store.Store) {
	t.Helper()
	missing, err := s.MissingBlobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("stored listings name blobs that are not stored: %v", missing)
	}
}

// publishCases are the store-level promises of Publish: blobs first and
// the listing last (a stored listing implies its blobs), nothing sent for
// a stored listing, only the blobs a known listing lacks otherwise, and
// nothing named when a publish fails.
func publishCases() map[string]func(t *testing.T, b store.Backend, s *store.Store) {
	ctx := context.Background()
	return map[string]func(t *testing.T, b store.Backend, s *store.Store){
		"publish stores each blob once, then the listing": func(t *testing.T, _ store.Backend, s *store.Store) {
			dir, m := tree(t, 40)
			stats, err := s.Publish(ctx, dir, m)
			if err != nil {
				t.Fatal(err)
			}
			if want := distinct(m); stats.Needed != want || stats.Written != want {
				t.Fatalf("needed %d, wrote %d; want %d distinct blobs each", stats.Needed, stats.Written, want)
			}
			if ok, err := s.HasListing(ctx, m.Digest()); !ok || err != nil {
				t.Fatalf("the listing is not stored: %v", err)
			}
			if err := s.Verify(ctx, m.Digest()); err != nil {
				t.Fatal(err)
			}
			invariant(t, s)
			// The same tree again: the stored listing answers, nothing is sent.
			stats, err = s.Publish(ctx, dir, m)
			if err != nil || stats.Needed != 0 {
				t.Fatalf("re-publish: %+v, %v; want nothing needed", stats, err)
			}
		},
		"publish sends only what the known listing lacks": func(t *testing.T, _ store.Backend, s *store.Store) {
			dir, m1 := tree(t, 40)
			if _, err := s.Publish(ctx, dir, m1); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "d3", "f0003.txt"), []byte("changed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m2 := rehash(t, dir)
			stats, err := s.Publish(ctx, dir, m2, m1.Digest())
			if err != nil {
				t.Fatal(err)
			}
			if stats.Needed != 1 || stats.Written != 1 {
				t.Fatalf("one file changed: needed %d, wrote %d; want 1 and 1", stats.Needed, stats.Written)
			}
			if err := s.Verify(ctx, m2.Digest()); err != nil {
				t.Fatal(err)
			}
			invariant(t, s)
		},
		"a known listing that is not stored proves nothing": func(t *testing.T, _ store.Backend, s *store.Store) {
			dir, m := tree(t, 10)
			other := digest.Bytes([]byte("a listing that was never published"))
			stats, err := s.Publish(ctx, dir, m, other)
			if err != nil {
				t.Fatal(err)
			}
			if want := distinct(m); stats.Needed != want {
				t.Fatalf("needed %d, want all %d", stats.Needed, want)
			}
			invariant(t, s)
		},
		"a file changed since it was hashed fails the publish and no listing names it": func(t *testing.T, b store.Backend, s *store.Store) {
			dir, m := tree(t, 10)
			if err := os.WriteFile(filepath.Join(dir, "d1", "f0001.txt"), []byte("changed after hashing\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := s.Publish(ctx, dir, m)
			var mm *store.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("want a MismatchError, got %v", err)
			}
			if ok, _ := s.HasListing(ctx, m.Digest()); ok {
				t.Fatal("a listing was stored for content that is not what it names")
			}
			for _, e := range m.Entries {
				if e.Path != "d1/f0001.txt" {
					continue
				}
				if mm.Want != e.SHA256 {
					t.Errorf("the mismatch names %s, want the changed file's planned digest %s", mm.Want, e.SHA256)
				}
				if ok, _ := s.HasBlob(ctx, e.SHA256); ok {
					t.Fatal("the changed file's planned digest holds something")
				}
			}
			invariant(t, s)
		},
		"a cancelled publish stores no listing": func(t *testing.T, _ store.Backend, s *store.Store) {
			dir, m := tree(t, 20)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Publish(cctx, dir, m); !errors.Is(err, context.Canceled) {
				t.Fatalf("want context.Canceled, got %v", err)
			}
			if ok, _ := s.HasListing(ctx, m.Digest()); ok {
				t.Fatal("a cancelled publish stored its listing")
			}
			invariant(t, s)
		},
	}
}
