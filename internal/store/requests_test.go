package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestBatchDeleteRun: keys go in chunks of Size, each Send holding a slot;
// a key answered busy goes again alone until it has been in Attempts
// requests; a key never sent (its context ended first) is ErrNotSent.
func TestBatchDeleteRun(t *testing.T) {
	slots := make(chan struct{}, 1)
	var mu sync.Mutex
	var batches [][]string
	errBusy := errors.New("busy")
	d := store.BatchDelete{
		Size: 3, Attempts: 3,
		Acquire: func(ctx context.Context) error {
			select {
			case slots <- struct{}{}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Release: func() { <-slots },
		Send: func(_ context.Context, keys []string, todo []int, errs []error) ([]int, error) {
			if len(slots) != 1 {
				t.Error("Send holds no slot")
			}
			var sent []string
			var retry []int
			for _, i := range todo {
				sent = append(sent, keys[i])
				errs[i] = nil
				if keys[i] == "busy" {
					errs[i] = errBusy
					retry = append(retry, i)
				}
			}
			mu.Lock()
			batches = append(batches, sent)
			mu.Unlock()
			return retry, nil
		},
	}
	errs := d.Run(context.Background(), []string{"a", "b", "c", "d", "busy", "e", "f"})
	if fmt.Sprint(errs) != "[<nil> <nil> <nil> <nil> busy <nil> <nil>]" {
		t.Errorf("results %v", errs)
	}
	in, alone := map[string]int{}, 0
	for _, b := range batches {
		for _, k := range b {
			in[k]++
		}
		if fmt.Sprint(b) == "[busy]" {
			alone++
		}
	}
	if len(batches) != 5 || alone != 2 || in["busy"] != 3 || len(in) != 7 || slices.ContainsFunc(batches, func(b []string) bool { return len(b) > 3 }) {
		t.Errorf("batches %q, want three chunks of at most 3, then the busy key twice more, alone", batches)
	}
	for k, n := range in {
		if k != "busy" && n != 1 {
			t.Errorf("%s sent %d times, want 1", k, n)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range d.Run(ctx, []string{"a", "b"}) {
		if !errors.Is(err, store.ErrNotSent) {
			t.Errorf("after the context ended: %v, want ErrNotSent", err)
		}
	}
}
