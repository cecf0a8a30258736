package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// ForEach runs every index once, returns a real failure rather than the
// cancellations it causes, stops feeding after it, and returns ctx's error
// when ctx ends first.
func TestForEach(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	if err := store.ForEach(ctx, 4, 100, func(context.Context, int) error { calls.Add(1); return nil }); err != nil || calls.Load() != 100 {
		t.Fatalf("ForEach = %v after %d calls, want nil after 100", err, calls.Load())
	}
	if err := store.ForEach(ctx, 4, 0, func(context.Context, int) error { return errors.New("called") }); err != nil {
		t.Fatalf("ForEach of nothing = %v", err)
	}
	broken := errors.New("broken")
	calls.Store(0)
	err := store.ForEach(ctx, 4, 1000, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 2 {
			return broken
		}
		<-ctx.Done() // the others wait for the cancel the failure causes
		return ctx.Err()
	})
	if !errors.Is(err, broken) {
		t.Fatalf("ForEach = %v, want the failure, not the cancellations", err)
	}
	if calls.Load() > 12 {
		t.Errorf("%d calls after a failure at index 2 with 4 workers: feeding went on", calls.Load())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := store.ForEach(cctx, 4, 10, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("ForEach on an ended context = %v, want context.Canceled", err)
	}
}

// unstaged is a local store without the filestore's staging, that writes
// four objects at once: a Publish to it goes as to S3, one object per
// request. The write of bigKey waits until small other keys have been
// written (closing others), for at most 10 s.
type unstaged struct {
	store.Backend
	bigKey string
	small  int
	done   atomic.Int64 // writes of other keys done
	others chan struct{}
}

func (u *unstaged) Concurrency() int { return 4 }

func (u *unstaged) Create(ctx context.Context, key string, r io.Reader) error {
	if key != u.bigKey {
		err := u.Backend.Create(ctx, key, r)
		if u.done.Add(1) == int64(u.small) {
			close(u.others)
		}
		return err
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	select {
	case <-u.others:
	case <-deadline.C:
		return fmt.Errorf("%d of %d other blobs written after 10 s: they waited for the large one", u.done.Load(), u.small)
	case <-ctx.Done():
		return ctx.Err()
	}
	return u.Backend.Create(ctx, key, r)
}

// TestPublishNeverHoldsBackOnALargeBlob: the blob a publish sends alone,
// to learn whether it is a re-run, is a small one. A large file first in
// the tree is written alongside the others, not before them all: here
// its write finishes only after theirs.
func TestPublishNeverHoldsBackOnALargeBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string][]byte{
		"a-large.bin": bytes.Repeat([]byte("L"), store.SmallBlob+1), // first in the listing
		"b.txt":       []byte("b\n"),
		"c.txt":       []byte("c\n"),
		"d.txt":       []byte("d\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstaged{Backend: fb, bigKey: store.BlobKey(digest.Bytes(files["a-large.bin"])), small: len(files) - 1, others: make(chan struct{})}
	stats, err := store.New(u).Publish(ctx, dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Written != len(files) {
		t.Fatalf("stats %+v; want all %d blobs written", stats, len(files))
	}
}
