package azstore_test

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
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
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

// calls counts the requests of c by kind: Azure names operations by
// method and the comp= of the query.
func calls(c *testserver.Counter, method, path, query string) int {
	n := 0
	for _, call := range c.Calls(method, path) {
		if strings.Contains(call.Query, query) {
			n++
		}
	}
	return n
}

// Request counts of publishing on Azure are the S3 store's: the first
// publish of n small files is one conditional Put Blob per file and one
// for the listing (no HEAD per file), two for the lease, and two for the
// store's identity; publishing it again from a new process is four
// requests; one changed file, with the previous listing known, is six,
// whatever n is. Never more requests in flight, or connections opened,
// than the backend's slots.
func TestPublishRequests(t *testing.T) {
	srv := testserver.StartAzurite(t)
	containerName := srv.NewContainer(t)
	counter := srv.Count(t)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(counter.Endpoint))
	const n = 300
	dir, m1 := smallTree(t, n)
	ctx := context.Background()
	newStore := func() *store.Store {
		b, err := azstore.New(ctx, testserver.AzuriteAccount, containerName, "p", azstore.Settings{MaxConcurrency: 8})
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
	// HEAD of the listing, the container's properties (a 404 is told apart
	// from a missing container once per backend), the identity's GET (none
	// yet), a list of the new store (does it hold only the store's keys?
	// store.CheckLocation) and the identity's PUT (store.Identify), the
	// lease's PUT and the list of collectors' markers (see store.Hold), a
	// PUT per blob, the listing's PUT.
	heads, puts, all := len(counter.Calls(http.MethodHead, "")), len(counter.Calls(http.MethodPut, "")), len(counter.Calls("", ""))
	if heads != 1 || calls(counter, http.MethodGet, "", "restype=container") != 3 || puts != n+3 || all != n+8 ||
		len(counter.Calls(http.MethodPut, "/gc/store.json")) != 1 {
		t.Errorf("first publish of %d files: %d HEAD, %d PUT, %d requests in all; want 1, %d (one the identity), %d: %v",
			n, heads, puts, all, n+3, n+8, counter.Calls("", "")[:min(all, 12)])
	}
	if got := counter.MaxInFlight(); got > 8 {
		t.Errorf("%d requests in flight at once, over MaxConcurrency 8", got)
	}
	if got := counter.Conns(); got > 8 {
		t.Errorf("%d connections opened for 8 request slots", got)
	}

	// The same tree from a fresh backend (a new apply): held first, then
	// found: the identity's GET, a lease PUT, a list of collectors'
	// markers and one HEAD of the listing; none per file.
	s = newStore()
	counter.Reset()
	if stats, err := s.Publish(ctx, dir, m1); err != nil || stats.Needed != 0 {
		t.Fatalf("re-publish: %+v, %v", stats, err)
	}
	if c := counter.Calls("", ""); len(c) != 4 || len(counter.Calls(http.MethodHead, "")) != 1 || len(counter.Calls(http.MethodPut, "")) != 1 ||
		len(counter.Calls(http.MethodGet, "/gc/store.json")) != 1 {
		t.Errorf("re-publishing a stored tree took %d requests, want 1 HEAD, the identity's GET, a lease PUT and a list: %v", len(c), c)
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
	// was read by this store already); HEAD of the new listing (absent; no
	// request for the container: this backend has read blobs in it); GET
	// of the previous listing; PUT of the changed file; PUT of the new
	// listing.
	if c := counter.Calls("", ""); len(c) != 6 || stats.Written != 1 || len(counter.Calls(http.MethodPut, "/gc/leases/")) != 1 {
		t.Errorf("one file changed: %d requests, %d blobs written; want 6 (one a lease) and 1: %v", len(c), stats.Written, c)
	}
	missing, err := s.MissingBlobs(ctx)
	if err != nil || len(missing) > 0 {
		t.Errorf("after the publishes, listings lack blobs: %v %v", missing, err)
	}
}
