//go:build unix

package actioncache

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func TestRealize(t *testing.T) {
	ctx := context.Background()
	ran := 0
	step := func(t *testing.T, script string) Step {
		j := job(t, script, nil, "out", "date")
		return Step{Job: j, Mode: ReadWrite, Prepare: func(context.Context) error { ran++; return nil }}
	}
	records := func(st *store.Store) int {
		keys, _ := st.Backend().List(ctx, "actions/")
		return len(keys)
	}

	t.Run("a miss runs and records; the plan's hit runs nothing", func(t *testing.T) {
		st := newStore(t)
		ran = 0
		s := step(t, "echo x > out")
		done, err := Realize(ctx, st, s)
		if err != nil || done.Hit || ran != 1 || records(st) != 1 {
			t.Fatalf("miss: %+v %v ran %d", done, err, ran)
		}
		s.Planned = &done.Record.Output
		again, err := Realize(ctx, st, s)
		if err != nil || !again.Hit || ran != 1 || *again.Record != *done.Record {
			t.Fatalf("hit: %+v %v ran %d", again, err, ran)
		}
		other := digest.Bytes([]byte("other"))
		s.Planned = &other
		var changed *RecordChangedError
		if _, err := Realize(ctx, st, s); !errors.As(err, &changed) {
			t.Fatalf("a plan for another output: %v", err)
		}
	})

	t.Run("read-only and off never record", func(t *testing.T) {
		for _, mode := range []Mode{ReadOnly, Off} {
			st := newStore(t)
			s := step(t, "echo x > out")
			s.Mode = mode
			if _, err := Realize(ctx, st, s); err != nil || records(st) != 0 {
				t.Fatalf("%s: %v, %d records", mode, err, records(st))
			}
		}
	})

	t.Run("check on a hit runs and compares", func(t *testing.T) {
		st := newStore(t)
		s := step(t, "date +%N > out")
		done, err := Realize(ctx, st, s)
		if err != nil {
			t.Fatal(err)
		}
		s.Planned, s.Check = &done.Record.Output, true
		var differs *NotReproducibleError
		if _, err := Realize(ctx, st, s); !errors.As(err, &differs) || differs.Raced || differs.Recorded != done.Record.Output {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("another run recorded first: its output wins, a warning or with check an error", func(t *testing.T) {
		st := newStore(t)
		s := step(t, "echo mine > out")
		theirs := []byte("theirs\n")
		for _, b := range [][]byte{theirs, []byte("log")} {
			if _, err := st.PutBlob(ctx, digest.Bytes(b), strings.NewReader(string(b))); err != nil {
				t.Fatal(err)
			}
		}
		first := &Record{Key: s.Job.Spec.Key(), Output: digest.Bytes(theirs), Type: TypeFile, Size: int64(len(theirs)), Files: 1, Log: digest.Bytes([]byte("log"))}
		if _, _, err := Put(ctx, st, first); err != nil {
			t.Fatal(err)
		}
		done, err := Realize(ctx, st, s)
		if err != nil || done.Differs == nil || !done.Differs.Raced || *done.Record != *first {
			t.Fatalf("got %+v %v", done, err)
		}
		s.Check = true
		var differs *NotReproducibleError
		if _, err := Realize(ctx, st, s); !errors.As(err, &differs) || !differs.Raced {
			t.Fatalf("with check: %v", err)
		}
	})
}

// A run stores its output and its log under leases of its own: recording
// it holds nothing again (a lease is a write and its fsyncs, or a request).
func TestRealizeHoldsEachObjectOnce(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	leases := func() int {
		keys, err := st.Backend().List(ctx, store.LeasesPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	for _, tc := range []struct{ script, output string }{{"mkdir out && echo x > out/f", "out"}, {"echo y > out", "out"}} {
		before := leases()
		s := Step{Job: job(t, tc.script, nil, tc.output, "mkdir"), Mode: ReadWrite}
		if _, err := Realize(ctx, st, s); err != nil {
			t.Fatal(err)
		}
		// One for the output (its publish), one for the log.
		if got := leases() - before; got != 2 {
			t.Errorf("%q: %d leases written, want 2", tc.script, got)
		}
	}
}
