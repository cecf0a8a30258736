package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestCrashedCollector: a collector stopped after any number of deletes
// leaves a consistent store, and the next run finishes the job.
func TestCrashedCollector(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		crash := errors.New("killed")
		t.Cleanup(func() { testHookDelete = nil })
		// Every stopping point on the local store; every third on S3.
		step := 1
		if !strings.HasPrefix(newStore().String(), "file://") {
			step = 3
		}
		for stop := 0; ; stop += step {
			w := newWorld(t, newStore())
			n := 0
			testHookDelete = func(context.Context, string) error {
				if n == stop {
					return crash
				}
				n++
				return nil
			}
			_, err := Collect(ctx, w.st, policy, later())
			testHookDelete = nil
			if err == nil {
				break // stop is past the last delete
			}
			if !errors.Is(err, crash) {
				t.Fatal(err)
			}
			checkConsistent(t, w.st)
			checkKept(t, w)
			_, err = Collect(ctx, w.st, policy, later())
			must(t, err)
			for _, k := range w.deleted {
				if ok, _ := w.st.Backend().Exists(ctx, k); ok {
					t.Fatalf("stopped after %d deletes, then run again: %s is still there", stop, k)
				}
			}
			checkConsistent(t, w.st)
		}
	})
}

// TestUnknownFilesKept: the sweep deletes only keys it recognises; a file
// put under the store's prefixes by hand (or by a newer version of the
// provider) stays.
func TestUnknownFilesKept(t *testing.T) {
	st := store.New(mustFilestore(t))
	b := st.Backend()
	sum := putBlob(t, st, "unreferenced\n")
	hex := sum.Hex()
	strays := []string{
		"blobs/README", "blobs/sha256/" + hex[:2] + "/" + hex + ".bak", "blobs/sha256/00/" + hex,
		"trees/sha256/" + hex[:2] + "/notes.txt", "archives/zip-v1/index", "actions/sha256/" + hex[:2] + "/" + strings.ToUpper(hex),
	}
	for _, k := range strays {
		must(t, b.Create(ctx, k, strings.NewReader("mine\n")))
	}
	expire(t, st)
	report, err := Collect(ctx, st, policy, later())
	must(t, err)
	after := objects(t, st)
	if _, ok := after[store.BlobKey(sum)]; ok {
		t.Fatalf("the unreferenced blob was kept: %v", report)
	}
	for _, k := range strays {
		if _, ok := after[k]; !ok {
			t.Errorf("%s was deleted", k)
		}
	}
}

// TestConcurrentCollectors: two collectors at once delete exactly what one
// would, neither fails, and the store stays consistent.
func TestConcurrentCollectors(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		before := objects(t, w.st)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { _, errs[i] = Collect(ctx, w.st, policy, later()) })
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		after := objects(t, w.st)
		var gone []string
		for k := range before {
			if _, ok := after[k]; !ok && isContent(k) {
				gone = append(gone, k)
			}
		}
		slices.Sort(gone)
		if !slices.Equal(gone, w.deleted) {
			t.Fatalf("deleted\n  %v\nwant\n  %v", gone, w.deleted)
		}
		checkConsistent(t, w.st)
	})
}

// TestWriterWaitsForMarker: a writer that checks presence while a batch
// naming what it relies on is being deleted waits for the batch, then
// finds the blob gone and stores it again; no listing names a missing
// blob. (Fails if Hold ignores markers.)
func TestWriterWaitsForMarker(t *testing.T) {
	st := store.New(mustFilestore(t))
	publishTree(t, st, map[string]string{"a.txt": "garbage\n"})
	expire(t, st)
	target := store.BlobKey(digest.Bytes([]byte("garbage\n")))
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "b.txt"), []byte("garbage\n"), 0o644))
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	must(t, err)
	writer := store.New(st.Backend()) // another process
	waiting := make(chan struct{}, 1)
	writer.Waiting = func(context.Context, string, time.Duration) { waiting <- struct{}{} }
	done := make(chan error, 1)
	t.Cleanup(func() { testHookDelete = nil })
	testHookDelete = func(_ context.Context, k string) error {
		if k != target {
			return nil
		}
		// The blob is condemned and about to go: the writer publishes a
		// listing naming it now, and must wait.
		go func() { _, err := writer.Publish(ctx, dir, m); done <- err }()
		select {
		case <-waiting:
		case err := <-done:
			t.Errorf("the writer did not wait for the marker (Publish: %v)", err)
			done <- err
		}
		return nil
	}
	_, err = Collect(ctx, st, policy, later())
	must(t, err)
	must(t, <-done)
	checkConsistent(t, st)
	if !present(t, st, target) {
		t.Fatal("the writer's blob is missing")
	}
}

// TestSlowBatchStops: a delete still in flight when half of MarkerTTL has
// passed is abandoned (its context ends) and the collection stops with a
// SlowError: writers stop waiting for a marker after MarkerTTL, and must
// not find a blob present that a late delete then removes.
func TestSlowBatchStops(t *testing.T) {
	old := store.MarkerTTL
	store.MarkerTTL = 2 * time.Second
	t.Cleanup(func() { store.MarkerTTL = old; testHookDelete = nil })
	st := store.New(mustFilestore(t))
	publishTree(t, st, map[string]string{"a.txt": "garbage\n"})
	expire(t, st)
	target := store.BlobKey(digest.Bytes([]byte("garbage\n")))
	testHookDelete = func(ctx context.Context, k string) error {
		if k == target {
			// A request that hangs past the budget: it ends when the
			// collector cancels what is still in flight (MarkerTTL/2).
			select {
			case <-ctx.Done():
			case <-time.After(2 * store.MarkerTTL):
				t.Error("the collector did not cancel a delete hanging past MarkerTTL/2")
			}
		}
		return nil
	}
	_, err := Collect(ctx, st, policy, later())
	var slow *SlowError
	if !errors.As(err, &slow) {
		t.Fatalf("Collect: %v, want a SlowError", err)
	}
	if !present(t, st, target) {
		t.Fatal("a delete ran after the batch's time was up")
	}
	checkConsistent(t, st)
}

// TestS3DeleteRequests: collecting n unreferenced blobs and a release
// version on S3 sends exactly ceil(n/1000) + 1 DeleteObjects requests (one
// per batch of --batch-size 1000, each naming the whole batch, and one for
// the version's record) and no DELETE of any object: the only DELETEs are
// of the collector's own markers, one per batch and one for the clock
// probe. A dry run sends neither; its listing of the blobs, more than a
// page, is one request and then one per folder.
func TestS3DeleteRequests(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	proxy := srv.Count(t)
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	b, err := s3store.New(ctx, bucket, "p", settings)
	must(t, err)
	st := store.New(b)
	must(t, store.WriteIdentity(ctx, b))
	// Three versions of a release, the oldest outside the policy: its
	// record goes in a DeleteObjects request too.
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "app", Version: v, Artifacts: map[string]string{}}, longAgo)
		must(t, err)
	}
	const n = 2500
	keys := make([]string, n)
	must(t, store.ForEach(ctx, 32, n, func(ctx context.Context, i int) error {
		data := fmt.Sprintf("garbage %d\n", i)
		keys[i] = store.BlobKey(digest.Bytes([]byte(data)))
		return b.Create(ctx, keys[i], strings.NewReader(data))
	}))
	batches := (n+999)/1000 + 1 // and the version's

	o := later()
	o.DryRun = true
	proxy.Reset()
	report, err := Collect(ctx, st, policy, o)
	must(t, err)
	if got := report.Deleted[KindBlob].Objects; got != n {
		t.Fatalf("a dry run would delete %d blobs, want %d", got, n)
	}
	// Blobs, more than a page of them: one request says so, then the
	// 256 folders are listed in parallel.
	var blobLists int
	for _, c := range proxy.Calls("GET", "") {
		if strings.Contains(c.Query, "list-type=2") && strings.Contains(c.Query, "blobs") {
			blobLists++
		}
	}
	if blobLists != 1+256 {
		t.Errorf("%d listings of blobs/, want 1 (a page, not the whole) + 256 (its folders)", blobLists)
	}
	for _, m := range []string{"POST", "DELETE", "PUT"} {
		if calls := proxy.Calls(m, ""); len(calls) > 0 {
			t.Fatalf("a dry run sent %d %s requests, such as %v", len(calls), m, calls[0])
		}
	}

	proxy.Reset()
	report, err = Collect(ctx, st, policy, later())
	must(t, err)
	if got := report.Deleted[KindBlob].Objects; got != n {
		t.Fatalf("deleted %d blobs, want %d", got, n)
	}
	var deletes int
	for _, c := range proxy.Calls("POST", "") {
		if c.Query == "delete=" || c.Query == "delete" {
			deletes++
		}
	}
	if deletes != batches {
		t.Errorf("%d DeleteObjects requests for %d blobs and a version, want ceil(%d/1000) + 1 = %d", deletes, n, n, batches)
	}
	if len(report.Versions) != 1 || report.Deleted[KindRelease].Objects != 1 {
		t.Errorf("deleted the versions %v (%d records), want app@1.0.0", report.Versions, report.Deleted[KindRelease].Objects)
	}
	dels := proxy.Calls("DELETE", "")
	for _, c := range dels {
		if !strings.Contains(c.Path, "/p/"+store.MarkersPrefix) {
			t.Errorf("a DELETE of %s: objects go in DeleteObjects requests", c.Path)
		}
	}
	if len(dels) != batches+1 {
		t.Errorf("%d DELETE requests, want %d (a marker per batch and the clock probe's)", len(dels), batches+1)
	}
	left, err := b.List(ctx, store.FamilyBlob.Dir())
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("%d blobs left", len(left))
	}
}

// TestS3PartialDeleteStops: when S3 refuses some keys of a batch (here
// every listing: the collector may delete under gc/ and blobs/ only), the
// collection stops with an error naming them, and nothing after them in
// the order of deletes goes: every blob the listings name stays.
func TestS3PartialDeleteStops(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	b, err := s3store.New(ctx, bucket, "p", srv.Settings())
	must(t, err)
	st := store.New(b)
	m := publishTree(t, st, map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	loose := putBlob(t, st, "loose\n")
	expire(t, st)
	access, secret := srv.AddUser(t, bucket, "collector", map[string][]string{
		"": {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}, "p/gc/": {"s3:DeleteObject"}, "p/blobs/": {"s3:DeleteObject"},
	})
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	cb, err := s3store.New(ctx, bucket, "p", srv.Settings())
	must(t, err)
	report, err := Collect(ctx, store.New(cb), policy, later())
	var de *DeleteError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), store.ListingKey(m.Digest())) || !strings.Contains(err.Error(), "s3:DeleteObject") {
		t.Fatalf("Collect: %v; want a DeleteError naming the listing and the permission", err)
	}
	if n := report.Deleted[KindBlob].Objects; n != 0 {
		t.Fatalf("%d blobs deleted after a listing could not be", n)
	}
	for _, k := range []string{store.ListingKey(m.Digest()), store.BlobKey(loose), store.BlobKey(m.Entries[0].SHA256), store.BlobKey(m.Entries[1].SHA256)} {
		if !present(t, st, k) {
			t.Errorf("%s is gone", k)
		}
	}
	checkConsistent(t, st)
}
