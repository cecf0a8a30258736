package gcsstore_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// smallTree writes n files of distinct small content and returns the
// directory and its listing.
func smallTree(t *testing.T, n int) (string, *digest.Listing) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%05d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, "file %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := digest.HashTree(context.Background(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// uploads are the requests that write an object (one-request uploads).
func uploads(c *testserver.Counter, part string) []testserver.Call {
	var out []testserver.Call
	for _, call := range c.Calls(http.MethodPost, "/upload/") {
		if strings.Contains(call.Query, part) {
			out = append(out, call)
		}
	}
	return out
}

// Request counts of publishing are the S3 store's: the first publish of n
// small files is one conditional upload per file and one for the listing
// (no metadata GET per file), two for the lease, and two for the store's
// identity; publishing it again from a new process is four requests; one
// changed file, with the previous listing known, is six whatever n is.
// And the slots bound what is in flight, and the connections.
func TestPublishRequests(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	counter := srv.Count(t)
	settings := gcsstore.Settings{MaxConcurrency: 8}
	const n = 1000
	dir, m1 := smallTree(t, n)
	ctx := context.Background()
	newStore := func() *store.Store { return store.New(behind(t, srv, counter.Endpoint, bucket, settings)) }

	s := newStore()
	counter.Reset()
	stats, err := s.Publish(ctx, dir, m1)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Written != n {
		t.Fatalf("wrote %d blobs, want %d", stats.Written, n)
	}
	// The listing's metadata (404) and, on this backend's first 404, a
	// one-object listing of the bucket (a missing bucket is told apart);
	// the identity's GET (none yet), a listing of the new store (does it
	// hold only the store's keys? store.CheckLocation) and the identity's
	// upload (store.Identify); the
	// lease's upload and the listing of collectors' markers (store.Hold);
	// an upload per blob; the listing's upload.
	gets, ups, all := len(counter.Calls(http.MethodGet, "")), len(uploads(counter, "")), len(counter.Calls("", ""))
	if gets != 5 || ups != n+3 || all != n+8 || len(uploads(counter, "gc%2Fstore.json")) != 1 {
		t.Errorf("first publish of %d files: %d GET, %d uploads, %d requests in all; want 5, %d (one the identity), %d",
			n, gets, ups, all, n+3, n+8)
	}
	for _, c := range uploads(counter, "") {
		if !strings.Contains(c.Query, "ifGenerationMatch=0") || !strings.Contains(c.Query, "uploadType=multipart") {
			t.Fatalf("an upload is not a one-request conditional write: %s?%s", c.Path, c.Query)
		}
	}
	if got := counter.MaxInFlight(); got > 8 {
		t.Errorf("%d requests in flight at once, over max_concurrency 8", got)
	}
	if got := counter.Conns(); got > 8 {
		t.Errorf("%d connections opened for 8 request slots", got)
	}

	// The same tree from a fresh backend (a new apply): held first (the
	// identity read, once per process; a lease; the markers listed), then
	// the listing found: four requests, none per file.
	s = newStore()
	counter.Reset()
	if stats, err := s.Publish(ctx, dir, m1); err != nil || stats.Needed != 0 {
		t.Fatalf("re-publish: %+v, %v", stats, err)
	}
	if calls := counter.Calls("", ""); len(calls) != 4 || len(uploads(counter, "")) != 1 ||
		len(counter.Calls(http.MethodGet, "/gc/store.json")) != 1 {
		t.Errorf("re-publishing a stored tree took %d requests, want the listing's metadata GET, the identity's GET, a lease upload and a LIST: %v", len(calls), calls)
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
	// The lease and the markers' listing (the identity was read by this
	// store already); the new listing's metadata (404; the bucket is known
	// to exist, this backend having read objects in it); the previous
	// listing's GET; the changed file's upload; the new listing's upload.
	if calls := counter.Calls("", ""); len(calls) != 6 || stats.Written != 1 || len(uploads(counter, "gc%2Fleases%2F")) != 1 {
		t.Errorf("one file changed: %d requests, %d blobs written; want 6 (one a lease) and 1: %v", len(calls), stats.Written, calls)
	}
	missing, err := s.MissingBlobs(ctx)
	if err != nil || len(missing) > 0 {
		t.Errorf("after the publishes, listings lack blobs: %v %v", missing, err)
	}
}
