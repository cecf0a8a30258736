//go:build unix

package actioncache

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func TestRecordIsWrittenOnceAndTheFirstWins(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	// Not reproducible: the output holds the nanoseconds of the run.
	j := job(t, "date +%N > out", nil, "out", "date")
	first, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	if first.Record.Output == second.Record.Output {
		t.Fatal("two runs of date +%N gave the same output")
	}
	got, _, err := Put(ctx, st, &first.Record)
	if err != nil || got.Output != first.Record.Output {
		t.Fatalf("first put: %v %v", got, err)
	}
	got, _, err = Put(ctx, st, &second.Record)
	if err != nil || got.Output != first.Record.Output {
		t.Fatalf("second put returned %v %v, want the first record kept", got, err)
	}
	r, _, err := Lookup(ctx, st, j.Spec.Key())
	if err != nil || *r != first.Record {
		t.Fatalf("lookup: %+v %v", r, err)
	}
}

// An output a run found already stored (and so did not hold) that a
// garbage collection deletes before the record is written: nothing is
// recorded. A record that is written holds its output and log first.
func TestPutRecordsOnlyWhatIsStored(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	j := job(t, "mkdir out && echo hello > out/a", nil, "out", "mkdir")
	res, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := st.Backend().(store.Deleter)
	if !ok {
		t.Fatal("the local store cannot delete")
	}
	if err := d.Delete(ctx, store.ListingKey(res.Record.Output)); err != nil {
		t.Fatal(err)
	}
	// A Put that records nothing leaves no lease behind.
	leasesLeft := func(before []string) {
		t.Helper()
		after, err := st.Backend().List(ctx, store.LeasesPrefix)
		if err != nil || !slices.Equal(after, before) {
			t.Fatalf("leases after a failed Put: %v (%v), want %v", after, err, before)
		}
	}
	before, err := st.Backend().List(ctx, store.LeasesPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var gone *MissingOutputError
	if _, _, err := Put(ctx, st, &res.Record); !errors.As(err, &gone) || !gone.Unrecorded || gone.What != "output listing" {
		t.Fatalf("Put of a record whose output is gone: %v", err)
	}
	leasesLeft(before)
	if ok, err := st.Backend().Exists(ctx, store.ActionKey(res.Record.Key)); err != nil || ok {
		t.Fatalf("a record was written: %v %v", ok, err)
	}

	res, err = Run(ctx, st, j) // stores the listing again
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, store.BlobKey(res.Record.Log)); err != nil {
		t.Fatal(err)
	}
	if before, err = st.Backend().List(ctx, store.LeasesPrefix); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Put(ctx, st, &res.Record); !errors.As(err, &gone) || !gone.Unrecorded || gone.What != "log" {
		t.Fatalf("Put of a record whose log is gone: %v", err)
	}
	leasesLeft(before)

	res, err = Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := st.Backend().List(ctx, store.LeasesPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Put(ctx, st, &res.Record); err != nil {
		t.Fatal(err)
	}
	after, err := st.Backend().List(ctx, store.LeasesPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, k := range after {
		if !slices.Contains(leases, k) {
			keys, err := store.ReadKeys(ctx, st.Backend(), k, false)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, keys...)
		}
	}
	want := []string{store.BlobKey(res.Record.Log), store.ListingKey(res.Record.Output)}
	slices.Sort(want)
	if !slices.Equal(held, want) {
		t.Fatalf("Put held %v, want %v", held, want)
	}
}

func TestLookupChecksWhatItReads(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	j := job(t, "mkdir out && echo x > out/x", nil, "out", "mkdir")
	res, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	key := j.Spec.Key()
	if _, _, err := Lookup(ctx, st, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lookup before put: %v", err)
	}
	good := res.Record.Encode()
	other := res.Record
	other.Key = digest.Bytes([]byte("another key"))
	missing := res.Record
	missing.Output = digest.Bytes([]byte("not stored"))
	for name, b := range map[string][]byte{
		"another key's record": other.Encode(),
		"truncated":            good[:len(good)-5],
		"extra line":           append(append([]byte{}, good...), "x 1\n"...),
		"failed exit":          []byte(strings.Replace(string(good), "exit 0", "exit 1", 1)),
		"padded":               []byte(strings.Replace(string(good), "size ", "size 0", 1)),
	} {
		if _, err := ParseRecord(b, key, "k"); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// A record naming an output the store lacks is refused, not trusted.
	if err := st.Backend().Create(ctx, store.ActionKey(key), strings.NewReader(string(missing.Encode()))); err != nil {
		t.Fatal(err)
	}
	var mo *MissingOutputError
	if _, _, err := Lookup(ctx, st, key); !errors.As(err, &mo) {
		t.Fatalf("lookup of a record whose output is gone: %v", err)
	}
}
