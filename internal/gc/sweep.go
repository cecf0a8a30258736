package gc

// Sweeping: deleting what is not kept, in the order that keeps the store's
// invariants, a batch at a time under a marker.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// SlowError is a batch that could not be deleted within half of
// store.MarkerTTL: the collector stops, as writers stop waiting for it.
type SlowError struct{ Deleted, Left int }

func (e *SlowError) Error() string {
	return fmt.Sprintf("the collection stopped after %d deletes with %d left in the batch: a batch must finish within %s "+
		"(writers wait for it no longer); the store is consistent. Run the collection again, with a smaller --batch-size "+
		"if the store is slow", e.Deleted, e.Left, store.MarkerTTL/2)
}

// testHookDelete, when set, runs before each delete of a content key or
// release record; an error stops the collection there, as a crash would.
var testHookDelete func(ctx context.Context, key string) error

// plan is what a collection deletes: the versions the policy does not
// keep, oldest first, the content no kept root reaches by kind, and the
// expired leases and stale markers.
type plan struct {
	gone            []*version
	byKind          map[string][]string
	leases, markers []string
	// young are the markers of other collections not expired yet: waited
	// for, and removed once expired (settleMarkers).
	young []string
}

// empty is a plan that deletes nothing (and so writes nothing).
func (p *plan) empty() bool {
	n := len(p.gone) + len(p.leases) + len(p.markers) + len(p.young)
	for _, ks := range p.byKind {
		n += len(ks)
	}
	return n == 0
}

// plan says what is deleted, given the versions and the keys kept.
func (c *collector) plan(ctx context.Context, vs []*version, kept map[string]bool) (*plan, error) {
	p := &plan{byKind: map[string][]string{}}
	for _, v := range vs {
		if !v.keep {
			p.gone = append(p.gone, v)
		}
	}
	// vs is by name, highest version first: deleted oldest first.
	slices.Reverse(p.gone)
	for k := range c.all {
		if kept[k] || !isContent(k) {
			continue
		}
		key, _ := store.ParseKey(k)
		p.byKind[kinds[key.Family]] = append(p.byKind[kinds[key.Family]], k)
	}
	if err := c.planProtocol(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// planProtocol says which leases and markers p deletes (expired, on both
// clocks) and which markers it waits for (young): planned with the plan,
// and again once the store's clock is measured.
func (c *collector) planProtocol(ctx context.Context, p *plan) error {
	// Only what was read and parsed as a lease or a marker goes as one.
	p.leases = nil
	for _, k := range c.expired(store.LeasesPrefix, c.p.Grace) {
		if _, ok := c.leases[k]; ok {
			p.leases = append(p.leases, k)
		}
	}
	var todo []string
	expired := c.expired(store.MarkersPrefix, store.MarkerTTL)
	for _, k := range expired {
		if _, ok := c.stale[k]; !ok { // written once: read once
			todo = append(todo, k)
		}
	}
	read, err := c.readProtocol(ctx, todo, true)
	if err != nil {
		return err
	}
	maps.Copy(c.stale, read)
	p.markers = nil
	for _, k := range expired {
		if _, ok := c.stale[k]; ok {
			p.markers = append(p.markers, k)
		}
	}
	p.young = c.youngMarkers()
	return nil
}

// sweep deletes, in order, expired leases and stale markers, the versions
// the policy does not keep, and the content no kept root reaches (what p
// says); then it waits for the markers of other collections still young,
// and removes them once expired (settleMarkers). In a dry run it only
// counts and reports them.
func (c *collector) sweep(ctx context.Context, p *plan) error {
	gone, byKind, leases, markers := p.gone, p.byKind, p.leases, p.markers
	if c.o.DryRun {
		c.count(KindSignature, byKind[KindSignature]...)
		for _, v := range gone {
			c.report.Versions = append(c.report.Versions, v.String())
			c.count(KindRelease, c.versionKeys(v)...)
		}
		for _, kind := range contentKinds {
			c.count(kind, byKind[kind]...)
		}
		c.count(KindLease, leases...)
		c.count(KindMarker, markers...)
		c.logDeleted(snapshot{})
		return c.settleMarkers(ctx)
	}
	// Expired leases and stale markers first, under no marker: they
	// protect nothing (a lease is read as expired only when older than the
	// grace period on the store's clock, and no writer waits for such a
	// marker), a run that stops later on leaves fewer for the next one to
	// list in every batch, and on a full disk they free the space the
	// markers of the other deletes need.
	for _, kk := range []struct {
		kind string
		keys []string
	}{{KindLease, leases}, {KindMarker, markers}} {
		before := c.snapshot()
		err := store.ForEach(ctx, c.st.Concurrency(), chunks(len(kk.keys)), func(ctx context.Context, i int) error {
			return c.deleteBatch(ctx, kk.kind, chunk(kk.keys, i), nil)
		})
		c.logDeleted(before)
		if err != nil {
			return err
		}
	}
	// Signatures of the records about to go (and of records gone
	// already) first: a signature never names a record that is not there
	// longer than a collection.
	if err := c.sweepKeys(ctx, KindSignature, byKind[KindSignature]); err != nil {
		return err
	}
	deletedVersions := map[string]bool{}
	defer func() { // in the order of gone, whatever order the deletes ran in
		for _, v := range gone {
			if deletedVersions[v.String()] {
				c.report.Versions = append(c.report.Versions, v.String())
			}
		}
	}()
	// Release versions, a batch at a time: the record is condemned, then
	// its tombstone written, then the record goes.
	for start := 0; start < len(gone); start += c.o.BatchSize {
		batch := gone[start:min(len(gone), start+c.o.BatchSize)]
		keys := make([]string, len(batch))
		for i, v := range batch {
			keys[i] = release.VersionKey(v.name, v.version)
		}
		before := c.snapshot()
		err := c.condemned(ctx, keys, true, func(ctx context.Context, todo []string, run *batchRun) error {
			// Every tombstone first, then the records, in DeleteObjects
			// requests: no record goes before its tombstone stands.
			var made []string // the tombstones this attempt wrote (guarded by c.mu)
			tombs := c.eachKey(func(ctx context.Context, k string) error {
				v := batch[slices.Index(keys, k)]
				tomb := bytes.NewReader(release.TombstoneBody(v.record.Digest))
				key := release.CollectedKey(v.name, v.version)
				switch err := c.b.Create(ctx, key, tomb); {
				case err == nil:
					c.mu.Lock()
					c.report.Tombstones++
					made = append(made, key)
					c.mu.Unlock()
				case isFull(err):
					return &noRoomError{err} // before any record of the batch is deleted
				case !errors.Is(err, store.ErrExists):
					return err
				}
				return nil
			})
			if err := tombs(ctx, todo, &batchRun{started: run.started}); err != nil {
				// No record of the batch is deleted: the tombstones it
				// wrote go too, else a version kept after all (a writer's
				// lease, a run that stops) would stand refused.
				return c.untomb(ctx, made, err)
			}
			var records []string
			owner := map[string]*version{}
			for _, k := range todo {
				v := batch[slices.Index(keys, k)]
				for _, rk := range c.versionKeys(v) {
					records = append(records, rk)
					owner[rk] = v
				}
			}
			run.deleted = func(ks []string) {
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, k := range ks {
					deletedVersions[owner[k].String()] = true
				}
			}
			return store.ForEach(ctx, c.st.Concurrency(), chunks(len(records)), func(ctx context.Context, i int) error {
				if !run.started() {
					return errLate
				}
				return c.deleteBatch(ctx, KindRelease, chunk(records, i), run)
			})
		})
		c.logDeleted(before)
		if err != nil {
			return err
		}
	}
	for _, kind := range contentKinds {
		if err := c.sweepKeys(ctx, kind, byKind[kind]); err != nil {
			return err
		}
	}
	return c.settleMarkers(ctx)
}

// untomb deletes the tombstones a batch wrote before it failed with err
// (no record deleted yet), uncounting them, and returns err; a tombstone
// it cannot delete is named with err.
func (c *collector) untomb(ctx context.Context, made []string, err error) error {
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, k := range made {
		if derr := c.d.Delete(cleanup, k); derr != nil {
			// Not a *noRoomError any more: no half runs with it there.
			return fmt.Errorf("%v; and the tombstone %s, written for a record not deleted, could not be deleted "+
				"(delete it, or the version cannot be published again): %w", err, k, derr)
		}
		c.mu.Lock()
		c.report.Tombstones--
		c.mu.Unlock()
	}
	return err
}

// Marker is another collection's marker that was not expired when this
// one listed the store: that collection was still running (here or on
// another machine), or was interrupted (killed part-way). Nothing tells
// the two apart before the marker expires (store.MarkerTTL after it was
// written): until then a collector may still be deleting what it names,
// and writers that reuse any of it wait for it. So a collection never
// removes such a marker early; it waits until the marker goes (its
// collection finished) or expires (its collection can delete nothing
// more), and removes it then.
type Marker struct {
	Key string
	// Expires is when writers stop waiting for it, on this machine's
	// clock.
	Expires time.Time
	// Waited is how long this collection waited for it; Removed whether
	// it removed it (it had expired), else its own collection did.
	Waited  time.Duration
	Removed bool
}

// markerPoll is how often a collection waiting for another's marker
// looks again.
var markerPoll = 200 * time.Millisecond

// settleMarkers waits for each marker of another collection that was not
// expired when the store was listed (Marker) until it is gone or expired,
// and removes the expired ones: a collection interrupted part-way leaves
// none behind once this one is done. Of what that collection named, this
// run has deleted what its own policy finds garbage (all it left, when the
// policy is the same). In a dry run it only reports them.
func (c *collector) settleMarkers(ctx context.Context) error {
	for _, k := range c.youngMarkers() {
		// The age on the store's clock, the expiry on this machine's.
		expires := c.all[k].modTime().Add(store.MarkerTTL - c.offset)
		m := Marker{Key: k, Expires: expires}
		if c.o.Warn != nil {
			what := "this collection waits for it to go or expire (at most %s more), then removes it"
			if c.o.DryRun {
				what = "a collection that is not a dry run waits for it (%s more), then removes it"
			}
			_, _ = fmt.Fprintf(c.o.Warn, "gc: %s is the marker of another collection, still running or interrupted (killed "+
				"part-way): writers that reuse what it names wait for it until it expires at %s; "+what+"\n",
				k, expires.UTC().Format("2006-01-02 15:04:05 MST"), max(0, expires.Sub(planClock())).Round(time.Second))
		}
		if c.o.DryRun {
			c.report.Markers = append(c.report.Markers, m)
			continue
		}
		start := time.Now()
		gone, err := c.awaitMarker(ctx, k, expires)
		if err != nil {
			return err
		}
		m.Waited = time.Since(start)
		if !gone {
			if _, err := c.readProtocol(ctx, []string{k}, true); err != nil {
				return err // not what a collector writes: left as it is
			}
			before := c.snapshot()
			if err := c.deleteBatch(ctx, KindMarker, []string{k}, nil); err != nil {
				return err
			}
			c.logDeleted(before)
			m.Removed = true
		}
		c.report.Markers = append(c.report.Markers, m)
	}
	return nil
}

// awaitMarker waits until the marker at k is gone (true), or has expired
// (expires is its time on the store's clock plus store.MarkerTTL, on
// this machine's clock: the marker is written once, so its time stays).
func (c *collector) awaitMarker(ctx context.Context, k string, expires time.Time) (gone bool, err error) {
	for {
		ok, err := c.b.Exists(ctx, k)
		if err != nil || !ok {
			return err == nil, err
		}
		if !planClock().Before(expires) {
			return false, nil
		}
		t := time.NewTimer(min(markerPoll, expires.Sub(planClock())))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
}

// youngMarkers are the keys under store.MarkersPrefix named as markers
// that are not expired (see expired): young on either clock. One not
// named as a marker is never removed (a run after it expires stops on
// it, naming it).
func (c *collector) youngMarkers() []string {
	var young []string
	for k, i := range c.all {
		if !strings.HasPrefix(k, store.MarkersPrefix) || c.storeNow().Sub(i.modTime()) > store.MarkerTTL && c.now.Sub(i.modTime()) > store.MarkerTTL {
			continue
		}
		if key, ok := store.ParseKey(k); ok && key.Family == store.FamilyMarker {
			young = append(young, k)
		}
	}
	sort.Strings(young)
	return young
}

// sweepKeys deletes keys of one kind, a batch under a marker of its own,
// Concurrency() batches at once: they hold one kind, so their order does
// not matter, and the first failure stops them all before the next kind.
func (c *collector) sweepKeys(ctx context.Context, kind string, keys []string) error {
	sort.Strings(keys)
	before := c.snapshot()
	defer c.logDeleted(before)
	batches := (len(keys) + c.o.BatchSize - 1) / c.o.BatchSize
	return store.ForEach(ctx, c.st.Concurrency(), batches, func(ctx context.Context, b int) error {
		batch := keys[b*c.o.BatchSize : min(len(keys), (b+1)*c.o.BatchSize)]
		return c.condemned(ctx, batch, false, func(ctx context.Context, todo []string, run *batchRun) error {
			// MaxBatchDelete keys a request; none starts late.
			return store.ForEach(ctx, c.st.Concurrency(), chunks(len(todo)), func(ctx context.Context, i int) error {
				if !run.started() {
					return errLate
				}
				return c.deleteBatch(ctx, kind, chunk(todo, i), run)
			})
		})
	})
}

// batchRun is a batch's deletes under way: whether a delete may still
// start, how many are done, and (if set) what to tell of the keys deleted.
type batchRun struct {
	started func() bool
	done    atomic.Int64
	deleted func(keys []string)
}

// chunks is how many requests of at most store.MaxBatchDelete keys n
// keys take; chunk is the i-th.
func chunks(n int) int { return (n + store.MaxBatchDelete - 1) / store.MaxBatchDelete }

func chunk(keys []string, i int) []string {
	return keys[i*store.MaxBatchDelete : min(len(keys), (i+1)*store.MaxBatchDelete)]
}

// eachKey deletes a batch's keys one operation each, Concurrency() at
// once, none started late.
func (c *collector) eachKey(del func(ctx context.Context, k string) error) func(ctx context.Context, todo []string, run *batchRun) error {
	return func(ctx context.Context, todo []string, run *batchRun) error {
		return store.ForEach(ctx, c.st.Concurrency(), len(todo), func(ctx context.Context, i int) error {
			if !run.started() {
				return errLate
			}
			if err := del(ctx, todo[i]); err != nil {
				return err
			}
			run.done.Add(1)
			return nil
		})
	}
}

// errLate stops a batch whose time to start deletes is over.
var errLate = errors.New("the batch's time to start deletes is over")

// DeleteError is a batch delete some of whose keys the store did not
// delete: the collection stopped there, before anything that comes after
// in the order of deletes.
type DeleteError struct {
	Kind string
	Err  *store.DeleteError
}

func (e *DeleteError) Error() string {
	return fmt.Sprintf("the collection stopped: deleting %s, %v. Nothing that comes after them in the order of deletes "+
		"was deleted, and the store is consistent; run the collection again once the cause is fixed", e.Kind, e.Err)
}

func (e *DeleteError) Unwrap() error { return e.Err }

// deleteBatch deletes keys of one kind in as few requests as the store
// takes, and counts those deleted; any key it could not delete stops the
// collection with a *DeleteError naming it.
func (c *collector) deleteBatch(ctx context.Context, kind string, keys []string, run *batchRun) error {
	if testHookDelete != nil {
		c.mu.Lock()
		for i, k := range keys {
			if err := testHookDelete(ctx, k); err != nil {
				c.mu.Unlock()
				// What came before the failing key goes, as if the
				// collector was killed while sending the batch.
				if derr := c.sendBatch(ctx, kind, keys[:i], run); derr != nil {
					return derr
				}
				return err
			}
		}
		c.mu.Unlock()
	}
	return c.sendBatch(ctx, kind, keys, run)
}

func (c *collector) sendBatch(ctx context.Context, kind string, keys []string, run *batchRun) error {
	if err := ctx.Err(); err != nil { // past the batch's time: not even a local delete
		return err
	}
	errs := store.DeleteMany(ctx, c.d, c.st.Concurrency(), keys)
	var deleted []string
	for i, err := range errs {
		if err == nil {
			deleted = append(deleted, keys[i])
		}
	}
	c.count(kind, deleted...)
	if run != nil {
		run.done.Add(int64(len(deleted)))
		if run.deleted != nil {
			run.deleted(deleted)
		}
	}
	if err := store.Failures(keys, errs); err != nil {
		var de *store.DeleteError
		if errors.As(err, &de) && ctx.Err() != nil {
			return ctx.Err() // stopped: a SlowError or a cancel says why
		}
		if errors.As(err, &de) {
			return &DeleteError{Kind: kind, Err: de}
		}
		return err
	}
	return nil
}

// versionKeys are the keys of a version that go with it: its record. Its
// index entry and yank history stay (a few bytes each): the index is how a
// publish of the same content finds the version again, and the yank how
// it is refused if it was broken (release.PlanVersion).
func (c *collector) versionKeys(v *version) []string {
	return []string{release.VersionKey(v.name, v.version)}
}

// expired lists the objects under prefix older than ttl.
func (c *collector) expired(prefix string, ttl time.Duration) []string {
	var keys []string
	for k, i := range c.all {
		if strings.HasPrefix(k, prefix) && c.storeNow().Sub(i.modTime()) > ttl && c.now.Sub(i.modTime()) > ttl {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// isFull tells a write that failed because the store's filesystem (or the
// user's quota there) is full: the backend says so (store.ErrFull).
func isFull(err error) bool { return errors.Is(err, store.ErrFull) }

// FullError is a store whose filesystem is so full that not even a batch
// of one key fits what it must write: nothing is deleted without a marker,
// as a writer reusing the key must see it first, and no release version
// without its tombstone.
type FullError struct {
	Store   string
	Files   int   // the files the batch writes: its marker, and a version's tombstone
	Bytes   int   // their size
	Deleted Count // what the run deleted before (expired leases, ...)
	// Room is what ran out, as far as the store can tell (its block size:
	// what each file takes at least; a quota; no inodes).
	Room store.Room
	Err  error
}

func (e *FullError) Error() string {
	freed := "nothing was deleted"
	if e.Deleted.Objects > 0 {
		freed = fmt.Sprintf("%s (%s) were deleted first, and that was not enough",
			count(e.Deleted.Objects, "objects"), Bytes(e.Deleted.Bytes))
	}
	what := "a marker (" + store.MarkersPrefix + ") naming it"
	if e.Files > 1 {
		what += " and its tombstone"
	}
	block, size := e.Room.BlockSize, "usually 4 KiB"
	if block > 0 {
		size = Bytes(block)
	} else {
		block = 4 << 10
	}
	least := (int64(e.Files)*block + 1023) / 1024
	full, free := "the filesystem holding the store "+e.Store+" is full", fmt.Sprintf("Free at least %d KiB on that filesystem "+
		"(outside the store: a file of yours)", least)
	switch {
	case e.Room.Quota:
		full = "your quota on the filesystem holding the store " + e.Store + " is used up"
		free = fmt.Sprintf("Free at least %d KiB of your files on that filesystem (outside the store), or have the quota "+
			"raised (quota -s shows it)", least)
	case e.Room.NoInodes:
		full = "the filesystem holding the store " + e.Store + " has no inodes left (df -i shows them), whatever room it has"
		free = fmt.Sprintf("Delete at least %d files on that filesystem (outside the store: files of yours)", e.Files)
	}
	return fmt.Sprintf("%s: the collector deletes nothing it has not announced first, "+
		"and even a single key needs %s: %d bytes in %d files, each taking at least a block of the filesystem (%s); %s. "+
		"%s, then run gc again: the store is consistent, and the next run deletes the rest (%v)",
		full, what, e.Bytes, e.Files, size, freed, free, e.cause())
}

// cause is the filesystem's own error (the write that failed), without
// the store's advice, which the message gives.
func (e *FullError) cause() error {
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		return pe
	}
	return e.Err
}

func (e *FullError) Unwrap() error { return e.Err }

// noRoomError is a batch none of whose keys was deleted because a file it
// writes first (its marker, a tombstone) did not fit on the store's full
// filesystem.
type noRoomError struct{ err error }

func (e *noRoomError) Error() string { return e.err.Error() }
func (e *noRoomError) Unwrap() error { return e.err }

// condemned runs del for each key of batch, as condemnedOnce does. When
// the store's filesystem is too full for the batch, it is condemned in
// halves, down to a key at a time, so that the first deletes free the
// space the next markers take; a key that does not fit alone is a
// *FullError. tombstones is whether each key also takes a tombstone.
func (c *collector) condemned(ctx context.Context, batch []string, tombstones bool, del func(ctx context.Context, todo []string, run *batchRun) error) error {
	err := c.condemnedOnce(ctx, batch, del)
	var nr *noRoomError
	if !errors.As(err, &nr) {
		return err
	}
	if len(batch) == 1 {
		c.mu.Lock()
		deleted := c.report.Total()
		c.mu.Unlock()
		full := &FullError{Store: c.st.String(), Files: 1, Bytes: len(store.MarkerBody(batch)), Deleted: deleted, Err: nr.err}
		if r := (interface{ Room() store.Room })(nil); errors.As(nr.err, &r) {
			full.Room = r.Room()
		}
		if tombstones {
			full.Files++
			full.Bytes += release.TombstoneSize
		}
		return full
	}
	c.logf("the store is full: %s do not fit; condemning them in halves", count(len(batch), "keys"))
	half := len(batch) / 2
	if err := c.condemned(ctx, batch[:half], tombstones, del); err != nil {
		return err
	}
	return c.condemned(ctx, batch[half:], tombstones, del)
}

// condemnedOnce runs del for each key of batch that no live lease reaches,
// under a marker naming the batch (the collector protocol in package
// store): marker first, then the leases, then the deletes, within half of
// store.MarkerTTL of writing the marker.
func (c *collector) condemnedOnce(ctx context.Context, batch []string, del func(ctx context.Context, todo []string, run *batchRun) error) error {
	start := time.Now()
	marker := store.MarkerKey(store.NewObjectID(start))
	if err := c.b.Create(ctx, marker, bytes.NewReader(store.MarkerBody(batch))); err != nil {
		if isFull(err) {
			return &noRoomError{err}
		}
		return err
	}
	err := c.deleteUnleased(ctx, batch, start, del)
	// The marker goes once nothing more of the batch will be deleted; a
	// collector killed part-way leaves it, and writers wait out its time.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if derr := c.d.Delete(cleanup, marker); err == nil {
		err = derr
	}
	return err
}

func (c *collector) deleteUnleased(ctx context.Context, batch []string, start time.Time, del func(ctx context.Context, todo []string, run *batchRun) error) error {
	leased, err := c.leasedKeys(ctx)
	if err != nil {
		return err
	}
	protected := map[string]bool{}
	if err := c.closure(ctx, protected, leased, false); err != nil {
		return err
	}
	var todo []string
	for _, k := range batch {
		if protected[k] {
			c.mu.Lock()
			c.report.Leased = append(c.report.Leased, k)
			c.mu.Unlock()
		} else {
			todo = append(todo, k)
		}
	}
	// Deleted Concurrency() at once: within a batch the order does not
	// matter, as every batch holds one kind (or whole versions).
	// No delete starts after a quarter of MarkerTTL, and none is still in
	// flight (or retried) after half of it: the requests' context ends
	// then, so a writer that stops waiting for the marker (after
	// MarkerTTL) never finds a key present that a late request deletes.
	budget, cancel := context.WithDeadline(ctx, start.Add(store.MarkerTTL/2))
	defer cancel()
	run := &batchRun{started: func() bool {
		// Wall and monotonic clocks both: a suspended machine's monotonic
		// clock stands still while writers' time runs on.
		return time.Since(start) <= store.MarkerTTL/4 && time.Now().Round(0).Sub(start.Round(0)) <= store.MarkerTTL/4
	}}
	slow := func() error {
		done := int(run.done.Load())
		return &SlowError{Deleted: done, Left: len(todo) - done}
	}
	err = del(budget, todo, run)
	if errors.Is(err, errLate) || err != nil && budget.Err() != nil && ctx.Err() == nil {
		return slow()
	}
	return err
}
