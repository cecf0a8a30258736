package gc

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// signal is a Warn writer that keeps what is written and closes written
// at the first write.
type signal struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	once    sync.Once
	written chan struct{}
}

func (s *signal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.once.Do(func() { close(s.written) })
	return s.buf.Write(p)
}

func (s *signal) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

// killedMarker stores a marker naming keys, as a collector does, aged to
// have been written at.
func killedMarker(t *testing.T, st *store.Store, keys []string, at time.Time) string {
	t.Helper()
	k := store.MarkerKey(store.NewObjectID(at))
	must(t, st.Backend().Create(ctx, k, bytes.NewReader(store.MarkerBody(keys))))
	age(t, st, k, at)
	return k
}

// TestInterruptedCollectionMarker: a collection killed while deleting
// leaves its marker, for which writers that reuse what it names wait
// until it expires (store.MarkerTTL). Run again, the collector finishes
// the deletes and then clears the marker safely: one past its expiry is
// dead by the protocol and goes at once; one before it may be a live
// collector's on another machine, so the run says so (naming it and when
// it expires), waits until it goes or expires, and removes it then; in a
// dry run it only says so. No marker is left once the run is done.
func TestInterruptedCollectionMarker(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		condemned := w.deleted[:3]
		dead := killedMarker(t, w.st, condemned, time.Now().Add(-store.MarkerTTL-time.Minute))
		// Expires two seconds from now.
		young := killedMarker(t, w.st, condemned, time.Now().Add(-store.MarkerTTL+2*time.Second))

		dry := &signal{written: make(chan struct{})}
		o := later()
		o.DryRun, o.Warn = true, dry
		report, err := Collect(ctx, w.st, policy, o)
		must(t, err)
		if len(report.Markers) != 1 || report.Markers[0].Key != young || !strings.Contains(report.String(), young) ||
			!strings.Contains(dry.String(), young) || !strings.Contains(dry.String(), "expires at") {
			t.Fatalf("a dry run with a young marker: %+v\nreport:\n%s\nwarnings: %s", report.Markers, report, dry)
		}
		if !present(t, w.st, young) || !present(t, w.st, dead) {
			t.Fatal("a dry run removed a marker")
		}

		warn := &signal{written: make(chan struct{})}
		o = later()
		o.Warn = warn
		start := time.Now()
		report, err = Collect(ctx, w.st, policy, o)
		must(t, err)
		if present(t, w.st, dead) || present(t, w.st, young) {
			t.Fatalf("markers left by a killed collection are still there after a run:\n%s", report)
		}
		for _, k := range condemned {
			if present(t, w.st, k) {
				t.Fatalf("%s, condemned by the killed collection and garbage, is still there", k)
			}
		}
		m := report.Markers
		if len(m) != 1 || m[0].Key != young || !m[0].Removed || time.Now().Before(m[0].Expires) {
			t.Fatalf("markers waited for: %+v", m)
		}
		if took := time.Since(start); took > store.MarkerTTL/2 {
			t.Fatalf("the run took %s: it waited for more than the marker's time left", took)
		}
		out := report.String()
		if !strings.Contains(out, "removed "+young) || !strings.Contains(out, "expired at") || !strings.Contains(warn.String(), young) {
			t.Fatalf("the report does not tell of the marker:\n%s\nwarnings: %s", out, warn)
		}
		if n := report.Deleted[KindMarker].Objects; n != 2 {
			t.Fatalf("%d markers counted as deleted, want 2:\n%s", n, out)
		}

		// Killed after its last delete: a run with nothing else to
		// delete still clears the marker.
		last := killedMarker(t, w.st, condemned, time.Now().Add(-store.MarkerTTL+time.Second))
		report, err = Collect(ctx, w.st, policy, later())
		must(t, err)
		if present(t, w.st, last) || len(report.Markers) != 1 || !report.Markers[0].Removed || report.Total().Objects != 1 {
			t.Fatalf("a run with only a killed run's marker to clear:\n%s", report)
		}
	})
}

// TestLiveCollectionMarker: a young marker that its collection removes
// while this run waits (it was live) ends the wait then: this run does
// not remove it, and reports that it waited.
func TestLiveCollectionMarker(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	live := killedMarker(t, w.st, w.deleted[:1], time.Now().Add(-time.Second))
	warn := &signal{written: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-warn.written // the run waits for it: its collection finishes
		if err := deleter(t, w.st).Delete(ctx, live); err != nil {
			t.Error(err)
		}
	}()
	o := later()
	o.Warn = warn
	report, err := Collect(ctx, w.st, policy, o)
	<-done
	must(t, err)
	m := report.Markers
	if len(m) != 1 || m[0].Key != live || m[0].Removed || m[0].Waited >= store.MarkerTTL/2 {
		t.Fatalf("a live marker: %+v", m)
	}
	if n := report.Deleted[KindMarker].Objects; n != 0 {
		t.Fatalf("a live marker counted as deleted by this run:\n%s", report)
	}
	if !strings.Contains(report.String(), "until that collection removed it") {
		t.Fatalf("report:\n%s", report)
	}
}
