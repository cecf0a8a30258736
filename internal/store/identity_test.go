package store_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// refusing is a local store that counts what is asked of the identity and
// refuses to write it, as an S3 role granted s3:PutObject on some
// prefixes only does.
type refusing struct {
	*filestore.Backend
	reads, writes atomic.Int64
}

type deniedError struct{}

func (deniedError) Error() string { return "access denied" }
func (deniedError) BackendError() {}

func (r *refusing) Create(ctx context.Context, key string, rd io.Reader) error {
	if key == store.IdentityKey {
		r.writes.Add(1)
		return deniedError{}
	}
	return r.Backend.Create(ctx, key, rd)
}

func (r *refusing) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == store.IdentityKey {
		r.reads.Add(1)
	}
	return r.Backend.Open(ctx, key)
}

// TestIdentifyOncePerStore: a writer looks for the identity once however
// many times it holds; one that may not write it (a BackendError) goes on
// and leaves it to a writer that may.
func TestIdentifyOncePerStore(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	b := &refusing{Backend: fb}
	st := store.New(b)
	for range 5 {
		if _, err := st.Hold(ctx, "blobs/sha256/00/00"); err != nil {
			t.Fatalf("a writer that may not write the identity: %v", err)
		}
	}
	if r, w := b.reads.Load(), b.writes.Load(); r != 1 || w != 1 {
		t.Fatalf("five holds read the identity %d times and tried to write it %d times; want once each", r, w)
	}
	if leases, _ := b.List(ctx, store.LeasesPrefix); len(leases) != 5 {
		t.Fatalf("leases %v, want five", leases)
	}
	if found, err := store.CheckIdentity(ctx, fb); found || err != nil {
		t.Fatalf("identity %v, %v", found, err)
	}
	// A writer that may: it writes it, and the next process only reads it.
	if _, err := store.New(fb).Hold(ctx, "blobs/sha256/00/00"); err != nil {
		t.Fatal(err)
	}
	next := store.New(b)
	for range 3 {
		if _, err := next.Hold(ctx, "blobs/sha256/00/00"); err != nil {
			t.Fatal(err)
		}
	}
	if r, w := b.reads.Load(), b.writes.Load(); r != 2 || w != 1 {
		t.Fatalf("a store with its identity: read %d times in all and written %d; want 2 and 1", r, w)
	}
	if found, err := store.CheckIdentity(ctx, fb); !found || err != nil {
		t.Fatalf("identity %v, %v", found, err)
	}
}

// TestCheckLocation: the rule for "may a writer make this location a
// store": an empty or missing directory and a store may; a folder of the
// user's (files outside the store's layout, no identity) may not, with a
// *ForeignError naming some of its files and what to do; and a writer
// (Hold) refuses it the same way, writing nothing. gc --adopt-store uses
// the same rule (store.Foreign; package gc tests it).
func TestCheckLocation(t *testing.T) {
	ctx := context.Background()
	newAt := func(dir string) *filestore.Backend {
		b, err := filestore.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	empty := t.TempDir()
	for name, dir := range map[string]string{"missing": filepath.Join(t.TempDir(), "new"), "empty": empty} {
		if found, err := store.CheckLocation(ctx, newAt(dir)); found || err != nil {
			t.Fatalf("%s directory: found %v, %v; want a location that may become a store", name, found, err)
		}
	}
	st := store.New(newAt(empty))
	if _, err := st.Hold(ctx, "blobs/sha256/00/00"); err != nil {
		t.Fatal(err)
	}
	if found, err := store.CheckLocation(ctx, newAt(empty)); !found || err != nil {
		t.Fatalf("a store: found %v, %v", found, err)
	}

	home := t.TempDir()
	files := []string{".ssh/id_rsa", "Documents/a.txt", "blobs/sha256/00/notes.txt", "b", "c", "d", "e"}
	for _, f := range files {
		p := filepath.Join(home, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mine\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var fe *store.ForeignError
	_, err := store.CheckLocation(ctx, newAt(home))
	if !errors.As(err, &fe) || fe.Count != len(files) || len(fe.Foreign) != 5 || fe.Foreign[0] != ".ssh/id_rsa" {
		t.Fatalf("a folder of the user's: %v; want a ForeignError naming 5 of its %d files", err, len(files))
	}
	for _, want := range []string{home, ".ssh/id_rsa", "7 entries", "empty or new directory", "--adopt-store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if l, err := store.New(newAt(home)).Hold(ctx, "blobs/sha256/00/00"); !errors.As(err, &fe) || l != nil {
		t.Fatalf("a writer holding in a folder of the user's: %v; want a ForeignError", err)
	}
	var left []string
	if err := filepath.WalkDir(home, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(home, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) != len(files) {
		t.Fatalf("the refused writer wrote into the folder: %v", left)
	}
}

// TestForeignErrorQuotesNames: a name put in the folder cannot reorder or
// recolour the message that names it.
func TestForeignErrorQuotesNames(t *testing.T) {
	err := &store.ForeignError{Store: "file:///x", Foreign: []string{"a\x1b[31mb\u202e"}, Count: 1}
	if msg := err.Error(); strings.ContainsAny(msg, "\x1b\u202e") || !strings.Contains(msg, `"a\u001B[31mb\u202E"`) {
		t.Fatalf("%q", msg)
	}
}
