package store_test

import (
	"context"
	"io"
	"path/filepath"
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
