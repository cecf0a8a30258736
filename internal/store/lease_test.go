package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestHoldMarkers: Hold waits for a collector's marker that names a held
// key, or that it cannot read (it may name anything), and only for those;
// a marker older than MarkerTTL is a crashed collector's and is passed
// over; a wait ends with the caller's context.
func TestHoldMarkers(t *testing.T) {
	const held = "blobs/sha256/ab/abab"
	cases := []struct {
		name string
		body string
		age  time.Duration
		wait bool
	}{
		{"names a held key", string(store.MarkerBody([]string{"trees/sha256/00/0000", held})), 0, true},
		{"names other keys", string(store.MarkerBody([]string{"trees/sha256/00/0000"})), 0, false},
		{"does not read", "edited by hand\n", 0, true},
		{"is a crashed collector's", string(store.MarkerBody([]string{held})), 2 * store.MarkerTTL, false},
		{"is a crashed collector's and does not read", "edited by hand\n", 2 * store.MarkerTTL, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			root := filepath.Join(t.TempDir(), "store")
			b, err := filestore.New(root)
			if err != nil {
				t.Fatal(err)
			}
			st := store.New(b)
			marker := store.MarkersPrefix + store.NewObjectID(time.Now())
			if err := b.Create(ctx, marker, strings.NewReader(c.body)); err != nil {
				t.Fatal(err)
			}
			if c.age > 0 {
				old := time.Now().Add(-c.age)
				if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(marker)), old, old); err != nil {
					t.Fatal(err)
				}
			}
			waited := false
			st.Waiting = func(ctx context.Context, m string, d time.Duration) {
				waited = true
				if m != marker || d <= 0 || d > store.MarkerTTL {
					t.Errorf("waiting for %s up to %s; want %s, within %s", m, d, marker, store.MarkerTTL)
				}
				// The collector finishes: its marker goes.
				if err := b.Delete(ctx, marker); err != nil {
					t.Error(err)
				}
			}
			if _, err := st.Hold(ctx, held); err != nil {
				t.Fatal(err)
			}
			if waited != c.wait {
				t.Fatalf("waited: %v, want %v", waited, c.wait)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		st := store.New(b)
		marker := store.MarkersPrefix + store.NewObjectID(time.Now())
		if err := b.Create(ctx, marker, strings.NewReader(string(store.MarkerBody([]string{held})))); err != nil {
			t.Fatal(err)
		}
		st.Waiting = func(context.Context, string, time.Duration) { cancel() }
		_, err = st.Hold(ctx, held)
		var we *store.WaitError
		if !errors.As(err, &we) || we.Marker != marker || !errors.Is(err, context.Canceled) {
			t.Fatalf("Hold: %v, want a WaitError for %s", err, marker)
		}
	})
}

// TestLongPublishChecksAgain: a publish that outlasts half its lease holds
// and checks again, before its listing names them, the blobs it found
// stored at its start (here: through a known listing, whose blob was
// deleted meanwhile). No listing names a missing blob.
func TestLongPublishChecksAgain(t *testing.T) {
	old := store.LeaseTTL
	store.LeaseTTL = 0 // every publish is "long"
	t.Cleanup(func() { store.LeaseTTL = old })
	ctx := context.Background()
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prev, err := st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, store.BlobKey(digest.Bytes([]byte("a\n")))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(ctx, dir, m, prev.Digest()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Publish: %v, want the missing blob found", err)
	}
	if ok, err := st.HasListing(ctx, m.Digest()); err != nil || ok {
		t.Fatalf("the listing was stored: %v %v", ok, err)
	}
}

// TestFailedWritersDropTheirLeases: a writer that stops before writing
// what names the keys it held (a check fails, the bytes do not match, a
// wait is cancelled) deletes its lease; one that writes keeps it, for a
// collector running now.
func TestFailedWritersDropTheirLeases(t *testing.T) {
	ctx := context.Background()
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	leases := func() int {
		t.Helper()
		keys, err := b.List(ctx, store.LeasesPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	missing := digest.Bytes([]byte("never stored\n"))
	m := &digest.Listing{Entries: []digest.Entry{{Path: "a.txt", Kind: digest.KindFile, Size: 13, SHA256: missing}}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed since\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		write func() error
	}{
		{"PutBlob of other bytes", func() error {
			_, err := st.PutBlob(ctx, missing, strings.NewReader("other bytes\n"))
			return err
		}},
		{"PutTree naming a missing blob", func() error {
			_, err := st.PutListing(ctx, m)
			return err
		}},
		{"PutArchiveRef naming a missing archive", func() error {
			_, err := st.PutArchiveRef(ctx, "zip", missing, missing)
			return err
		}},
		{"Publish of a file changed since it was hashed", func() error {
			_, err := st.Publish(ctx, dir, m)
			return err
		}},
	} {
		if err := c.write(); err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if n := leases(); n != 0 {
			t.Fatalf("%s: %d leases left behind", c.name, n)
		}
	}

	// Hold itself, cancelled while it waits for a collector's marker.
	marker := store.MarkersPrefix + store.NewObjectID(time.Now())
	if err := b.Create(ctx, marker, strings.NewReader(string(store.MarkerBody([]string{store.BlobKey(missing)})))); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	st.Waiting = func(context.Context, string, time.Duration) { cancel() }
	if _, err := st.Hold(cctx, store.BlobKey(missing)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hold: %v, want cancelled", err)
	}
	if n := leases(); n != 0 {
		t.Fatalf("a cancelled Hold left %d leases", n)
	}
	st.Waiting = nil
	if err := b.Delete(ctx, marker); err != nil {
		t.Fatal(err)
	}

	// A writer that stored what it held keeps its lease.
	if _, err := st.PutBlob(ctx, missing, strings.NewReader("never stored\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutListing(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n := leases(); n != 2 {
		t.Fatalf("%d leases after two writes, want 2", n)
	}
}
