package gc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
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

// TestClockMeasuredOnAMarker: a run that deletes on a local store with
// room measures the store's clock on a marker it stores in gc/condemned/,
// not by setting the time of the store's folder: that needs write
// permission on the folder itself (an admin's folder over team-writable
// ones), gets this machine's time on some network filesystems, and
// backups would see the folder change at every run.
func TestClockMeasuredOnAMarker(t *testing.T) {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	st := store.New(b)
	garbage := putBlob(t, st, "garbage\n")
	expire(t, st)
	must(t, os.MkdirAll(filepath.Join(b.Root(), "gc"), 0o755)) // as a store's identity leaves it
	age(t, st, store.BlobKey(garbage), time.Now().Add(-2*store.LeaseTTL))
	then := time.Now().Add(-time.Hour).Truncate(time.Second)
	must(t, os.Chtimes(b.Root(), then, then))
	var before syscall.Stat_t
	must(t, syscall.Stat(b.Root(), &before))
	p := policy
	p.Grace = store.LeaseTTL
	var log strings.Builder
	r, err := Collect(ctx, st, p, Options{AllowEmpty: true, Log: &log})
	must(t, err)
	if present(t, st, store.BlobKey(garbage)) {
		t.Fatalf("the garbage blob is still there\n%s", r)
	}
	var after syscall.Stat_t
	must(t, syscall.Stat(b.Root(), &after))
	if after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		t.Errorf("the store's folder changed: mtime %v, ctime %v; was %v, %v", after.Mtim, after.Ctim, before.Mtim, before.Ctim)
	}
	if !strings.Contains(log.String(), "the store's clock is 0s ahead of this machine's") {
		t.Errorf("the store's clock was not measured:\n%s", log.String())
	}
}
