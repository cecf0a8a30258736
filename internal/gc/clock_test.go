package gc

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestPlannedAgainOnTheStoresClock: a run plans on this machine's clock,
// then measures the store's; when the store's is behind (here: this
// machine's runs an hour ahead), what is young on the store's clock is
// kept, as the plan is made again on it.
func TestPlannedAgainOnTheStoresClock(t *testing.T) {
	st := store.New(mustFilestore(t))
	young := putBlob(t, st, "young on the store's clock\n")
	old := putBlob(t, st, "old on any clock\n")
	expire(t, st)
	age(t, st, store.BlobKey(young), time.Now().Add(-store.LeaseTTL+30*time.Minute))
	age(t, st, store.BlobKey(old), time.Now().Add(-store.LeaseTTL-2*time.Hour))
	t.Cleanup(func() { planClock = time.Now })
	planClock = func() time.Time { return time.Now().Add(time.Hour) }
	p := policy
	p.Grace = store.LeaseTTL
	r, err := Collect(ctx, st, p, Options{AllowEmpty: true})
	must(t, err)
	if !present(t, st, store.BlobKey(young)) || present(t, st, store.BlobKey(old)) {
		t.Fatalf("young blob present %v (want true), old blob present %v (want false)\n%s",
			present(t, st, store.BlobKey(young)), present(t, st, store.BlobKey(old)), r)
	}
	if r.Retained.Objects != 1 || r.Deleted[KindBlob].Objects != 1 {
		t.Fatalf("the report counts a first plan's decisions:\n%s", r)
	}
}

// TestLongPlanOnAStoreBehind: a plan that takes long (ten minutes here)
// does not hide a store whose clock is behind this machine's (five
// minutes, more than the slack): the run plans again at the store's time
// when the plan began, so a blob and a lease young on the store's clock
// then stay, with what the lease names, while an old blob goes.
func TestLongPlanOnAStoreBehind(t *testing.T) {
	st := store.New(mustFilestore(t))
	young := putBlob(t, st, "young on the store's clock\n")
	leased := putBlob(t, st, "named by a lease live on the store's clock\n")
	old := putBlob(t, st, "old on any clock\n")
	expire(t, st)
	lease := store.LeasesPrefix + store.NewObjectID(time.Now())
	must(t, st.Backend().Create(ctx, lease, bytes.NewReader(store.LeaseBody([]string{store.BlobKey(leased)}))))
	const behind, plan = 5 * time.Minute, 10 * time.Minute
	// Young by two minutes on the store's clock when the plan began (ten
	// minutes ago), old by two on this machine's less the slack.
	began := time.Now().Add(-plan)
	for _, k := range []string{store.BlobKey(young), store.BlobKey(leased), lease} {
		age(t, st, k, began.Add(-store.LeaseTTL+2*time.Minute))
	}
	age(t, st, store.BlobKey(old), began.Add(-store.LeaseTTL-10*time.Minute))
	// This machine's clock: its first reading is when the plan began;
	// every later one comes after the plan.
	var read atomic.Bool
	t.Cleanup(func() { planClock = time.Now })
	planClock = func() time.Time {
		if !read.Swap(true) {
			return time.Now().Add(behind - plan)
		}
		return time.Now().Add(behind)
	}
	p := policy
	p.Grace = store.LeaseTTL
	r, err := Collect(ctx, st, p, Options{AllowEmpty: true})
	must(t, err)
	for _, k := range []string{store.BlobKey(young), store.BlobKey(leased), lease} {
		if !present(t, st, k) {
			t.Errorf("%s, young on the store's clock, was deleted\n%s", k, r)
		}
	}
	if present(t, st, store.BlobKey(old)) {
		t.Errorf("the old blob is still there\n%s", r)
	}
}
