package gc

import (
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
