package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// smallTree writes n files of distinct small content and returns the
// directory and its listing.
func smallTree(t *testing.T, n int, seed ...int) (string, *digest.Listing) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%05d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, "file %d %v\n", i, seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := digest.HashTree(context.Background(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// Request counts of publishing are facts: the first publish of n small
// files is one conditional PUT per file and one for the listing (no HEAD
// per file), two for the lease, and two for the store's identity (once
// per store: looked for, and written); publishing it again from a new
// process is one HEAD, the lease and one read of the identity; one changed
// file, with the previous listing known, is seven requests whatever n is.
func TestPublishRequests(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	counter := srv.Count(t)
	settings := srv.Settings()
	settings.Endpoint = counter.Endpoint
	settings.MaxConcurrency = 8
	const n = 1000
	dir, m1 := smallTree(t, n)
	ctx := context.Background()
	newStore := func() *store.Store {
		b, err := s3store.New(ctx, bucket, "p", settings)
		if err != nil {
			t.Fatal(err)
		}
		return store.New(b)
	}

	s := newStore()
	counter.Reset()
	stats, err := s.Publish(ctx, dir, m1)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Written != n {
		t.Fatalf("wrote %d blobs, want %d", stats.Written, n)
	}
	heads, puts, all := len(counter.Calls(http.MethodHead, "")), len(counter.Calls(http.MethodPut, "")), len(counter.Calls("", ""))
	// HEAD of the listing, HEAD of the bucket (a 404 is told apart from a
	// missing bucket once per backend), the identity's GET (none yet) and
	// PUT (store.Identify, after a list of the new store: is it empty,
	// or does it hold only the store's keys? store.CheckLocation), the
	// lease's PUT and the list of collectors' markers (see store.Hold), a
	// PUT per blob, the listing's PUT.
	if heads != 2 || puts != n+3 || all != n+8 || len(counter.Calls(http.MethodPut, "/gc/store.json")) != 1 {
		t.Errorf("first publish of %d files: %d HEAD, %d PUT, %d requests in all; want 2, %d (one the identity), %d", n, heads, puts, all, n+3, n+8)
	}
	if got := counter.MaxInFlight(); got > 8 {
		t.Errorf("%d requests in flight at once, over max_concurrency 8", got)
	}
	if got := counter.Conns(); got > 8 {
		t.Errorf("%d connections opened for 8 request slots", got)
	}

	// The same tree from a fresh backend (a new apply): a HEAD finds the
	// listing; the apply is about to rely on it, so it is held (the store's
	// identity read, once per process; a lease, the markers listed) and
	// found again: five requests, none per file.
	s = newStore()
	counter.Reset()
	if stats, err := s.Publish(ctx, dir, m1); err != nil || stats.Needed != 0 {
		t.Fatalf("re-publish: %+v, %v", stats, err)
	}
	// Held first, then found: the identity's GET, a lease PUT, a LIST of
	// collectors' markers and one HEAD of the listing.
	if calls := counter.Calls("", ""); len(calls) != 4 || len(counter.Calls("HEAD", "")) != 1 || len(counter.Calls("PUT", "")) != 1 ||
		len(counter.Calls(http.MethodGet, "/gc/store.json")) != 1 {
		t.Errorf("re-publishing a stored tree took %d requests, want 1 HEAD, the identity's GET, a lease PUT and a LIST: %v", len(calls), calls)
	}

	// One file changed, the previous listing known (from state).
	if err := os.WriteFile(filepath.Join(dir, "d07", "f00007.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m2, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	stats, err = s.Publish(ctx, dir, m2, m1.Digest())
	if err != nil {
		t.Fatal(err)
	}
	// The lease (PUT) and the list of collectors' markers (the identity
	// was read by this store already); HEAD of the new listing (absent;
	// no HEAD of the bucket: this backend has read objects in it); GET of
	// the previous listing; PUT of the changed file; PUT of the new
	// listing.
	if calls := counter.Calls("", ""); len(calls) != 6 || stats.Written != 1 || len(counter.Calls(http.MethodPut, "/gc/leases/")) != 1 {
		t.Errorf("one file changed: %d requests, %d blobs written; want 6 (one a lease) and 1: %v", len(calls), stats.Written, calls)
	}
	missing, err := s.MissingBlobs(ctx)
	if err != nil || len(missing) > 0 {
		t.Errorf("after the publishes, listings lack blobs: %v %v", missing, err)
	}
}

// Many publishes at once through one backend (Terraform applies ten
// resources at a time, each publishing with every slot) never have more
// requests in flight, or connections open, than the backend's slots.
func TestConcurrencyIsBoundedAcrossPublishes(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	counter := srv.Count(t)
	settings := srv.Settings()
	settings.Endpoint = counter.Endpoint
	settings.MaxConcurrency = 6
	ctx := context.Background()
	b, err := s3store.New(ctx, bucket, "", settings)
	if err != nil {
		t.Fatal(err)
	}
	if b.Concurrency() != 6 {
		t.Fatalf("Concurrency() = %d, want the setting, 6", b.Concurrency())
	}
	s := store.New(b)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		dir, m := smallTree(t, 60, i) // each its own content: every request does work
		wg.Go(func() {
			_, err := s.Publish(ctx, dir, m)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.MaxInFlight(); got > 6 || got < 2 {
		t.Errorf("%d requests in flight at most; want between 2 (they overlap) and 6 (the slots)", got)
	}
	if got := counter.Conns(); got > 6 {
		t.Errorf("%d connections opened for 6 request slots", got)
	}
}

// Cancelling a publish (Ctrl-C) stops it promptly: requests in flight are
// abandoned, no more are sent, no listing is stored, and the backend's
// slots are all free again for the next caller.
func TestCancelStopsAPublish(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	proxy := srv.Proxy(t, 200*time.Millisecond) // 1,000 files: about 25 s if not stopped
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	settings.MaxConcurrency = 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := s3store.New(ctx, bucket, "", settings)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(b)
	dir, m := smallTree(t, 1000)
	var once sync.Once
	proxy.Notify(func(c testserver.Call) {
		if c.Method == http.MethodPut {
			once.Do(cancel)
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.Publish(ctx, dir, m)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled publish returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled publish did not return within 10 s")
	}
	proxy.Notify(nil)
	sent := len(proxy.Calls(http.MethodPut, ""))
	if sent > 2*8 {
		t.Errorf("%d PUTs were sent: requests went on after the cancel", sent)
	}
	fresh := store.New(b)
	if ok, err := fresh.HasListing(context.Background(), m.Digest()); ok || err != nil {
		t.Fatalf("a cancelled publish stored its listing (%v)", err)
	}
	// Every slot is free: the next publish (a small one) runs to the end.
	small, sm := smallTree(t, 20, 99)
	if _, err := fresh.Publish(context.Background(), small, sm); err != nil {
		t.Fatalf("publishing after a cancel: %v", err)
	}
}

// TestRetryBudgetSpent: with retries off (AWS_MAX_ATTEMPTS=1), the same
// network fails the publish part-way with an error that blames the
// network, not the settings, and says a re-run is safe. The re-run sends
// only the blobs still missing.
func TestRetryBudgetSpent(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	// The first 1,500 requests pass: the failed publish gets about half way.
	var seen atomic.Int64
	faults := testserver.Shares(23, 0.15, 0.03, 3)
	proxy := srv.Faulty(t, func(c testserver.Call, tries int) testserver.Fault {
		if seen.Add(1) <= 1500 {
			return testserver.Pass
		}
		return faults(c, tries)
	})
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	ctx := context.Background()
	const n = 3000
	dir, m := smallTree(t, n)

	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	b := newBackend(t, bucket, settings)
	if b.Attempts() != 1 {
		t.Fatalf("AWS_MAX_ATTEMPTS=1 gave %d attempts", b.Attempts())
	}
	_, err := store.New(b).Publish(ctx, dir, m)
	var e *s3store.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *s3store.Error, got %v", err)
	}
	for _, want := range []string{"retries are off", "The network or the server failed", "Re-running apply is safe", "only what is still missing is sent", "`s3.max_attempts` (or AWS_MAX_ATTEMPTS); it is 1 now"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Check `s3.endpoint`") {
		t.Errorf("the error blames the settings: %v", err)
	}
	t.Log(err)

	// What the failed publish left: the blobs still missing.
	s := store.New(newBackend(t, bucket, srv.Settings()))
	missing := map[string]bool{}
	for _, e := range m.Entries {
		if ok, err := s.HasBlob(ctx, e.SHA256); err != nil {
			t.Fatal(err)
		} else if !ok {
			missing["/"+bucket+"/p/"+store.BlobKey(e.SHA256)] = true
		}
	}
	if len(missing) == 0 || len(missing) == n {
		t.Fatalf("%d of %d blobs missing after the failed publish; want it to have failed part-way", len(missing), n)
	}

	// The re-run, the network healthy again.
	t.Setenv("AWS_MAX_ATTEMPTS", "")
	proxy.SetFaults(nil)
	proxy.Reset()
	b = newBackend(t, bucket, settings)
	if b.Attempts() != store.DefaultMaxAttempts {
		t.Fatalf("AWS_MAX_ATTEMPTS empty gave %d attempts", b.Attempts())
	}
	stats, err := store.New(b).Publish(ctx, dir, m)
	if err != nil {
		t.Fatal(err)
	}
	var sent, resent int
	for _, c := range proxy.Calls(http.MethodPut, "/blobs/") {
		if missing[c.Path] {
			sent++
		} else {
			resent++
		}
	}
	t.Logf("%d blobs missing; the re-run sent %d of them and %d stored already, in %d requests", len(missing), sent, resent, len(proxy.Calls("", "")))
	// The first blob is sent to find out whether this is a re-run; after
	// its answer, only what is missing.
	if sent != len(missing) || resent > 1 || stats.Written != len(missing) {
		t.Errorf("the re-run sent %d of the %d missing blobs and %d stored ones (wrote %d); want exactly the missing ones", sent, len(missing), resent, stats.Written)
	}
	if err := s.Verify(ctx, m.Digest()); err != nil {
		t.Fatal(err)
	}
}
