package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
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
