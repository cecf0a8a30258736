package gc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// eachStoreAndAzure runs test as eachStore does, and on fresh containers
// of Azurite (Azure Blob Storage). Only for tests that need not age
// objects: Azurite cannot set a blob's Last-Modified.
func eachStoreAndAzure(t *testing.T, test func(t *testing.T, newStore func() *store.Store)) {
	eachStore(t, test)
	t.Run("azblob", func(t *testing.T) {
		srv := testserver.StartAzurite(t)
		srv.Env(t)
		test(t, func() *store.Store {
			b, err := azstore.New(ctx, testserver.AzuriteAccount, srv.NewContainer(t), "gc-test", azstore.Settings{})
			if err != nil {
				t.Fatal(err)
			}
			return store.New(b)
		})
	})
}

// TestMainAzureErrorsNameFlags: the command on azblob:// stores names its
// own flag and the collector's role, never the provider's settings; with
// the right credentials it collects.
func TestMainAzureErrorsNameFlags(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	code, stdout, stderr := run("--store", "azblob://"+testserver.AzuriteAccount+"/no-such-container/p")
	if code != 1 || strings.Contains(stderr, "provider's `") || !strings.Contains(stderr, `the container "no-such-container" does not exist`) ||
		!strings.Contains(stderr, "--store (or IMMUTABLE_STORE)") {
		t.Fatalf("a missing container: exit %d\n%s%s", code, stdout, stderr)
	}
	containerName := srv.NewContainer(t)
	b, err := azstore.New(ctx, testserver.AzuriteAccount, containerName, "p", azstore.Settings{})
	must(t, err)
	putBlob(t, store.New(b), "content\n")
	expire(t, store.New(b))
	url := "azblob://" + testserver.AzuriteAccount + "/" + containerName + "/p"
	code, stdout, stderr = run("--store", url, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "would delete") {
		t.Fatalf("a dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	// A publisher's SAS (read, create, write, list; no delete).
	cred, err := azblob.NewSharedKeyCredential(testserver.AzuriteAccount, testserver.AzuriteKey)
	must(t, err)
	q, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: containerName,
		Permissions: (&sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, List: true}).String(),
	}.SignWithSharedKey(cred)
	must(t, err)
	t.Setenv(azstore.ConnectionStringEnv, "BlobEndpoint="+srv.Endpoint+"/"+testserver.AzuriteAccount+";SharedAccessSignature="+q.Encode())
	laterClock(t) // the blob is garbage: there is something to delete
	code, stdout, stderr = run("--store", url)
	if code != 1 || strings.Contains(stderr, "provider's `") || !strings.Contains(stderr, "access denied") ||
		!strings.Contains(stderr, "delete permission") {
		t.Fatalf("a publisher's credentials: exit %d\n%s%s", code, stdout, stderr)
	}
}

// azureBehind returns a backend on a fresh container of srv whose requests
// go through proxy, and one that reaches srv directly.
func azureBehind(t testing.TB, srv *testserver.Azurite, proxy *testserver.Counter) (proxied, direct *azstore.Backend) {
	t.Helper()
	containerName := srv.NewContainer(t)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	proxied, err := azstore.New(ctx, testserver.AzuriteAccount, containerName, "p", azstore.Settings{})
	must(t, err)
	srv.Env(t) // the connection string is read by New only
	direct, err = azstore.New(ctx, testserver.AzuriteAccount, containerName, "p", azstore.Settings{})
	must(t, err)
	return proxied, direct
}

// blobBatches counts the Blob Batch requests among calls.
func blobBatches(calls []testserver.Call) int {
	n := 0
	for _, c := range calls {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") {
			n++
		}
	}
	return n
}

// TestAzureDeleteRequests: collecting n unreferenced blobs and a release
// version on Azure sends ceil(n/256) + 1 Blob Batch requests (the blobs
// of a batch of --batch-size 1000 in batches of 256 Delete Blob
// sub-requests, and one for the version's record) and no Delete Blob of
// any object: the only DELETEs are of the collector's own markers, one
// per batch and one for the clock probe.
func TestAzureDeleteRequests(t *testing.T) {
	srv := testserver.StartAzurite(t)
	proxy := srv.Count(t)
	b, direct := azureBehind(t, srv, proxy)
	st := store.New(b)
	must(t, store.WriteIdentity(ctx, b))
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "app", Version: v, Artifacts: map[string]string{}}, longAgo)
		must(t, err)
	}
	const n = 600
	must(t, store.ForEach(ctx, 32, n, func(ctx context.Context, i int) error {
		data := fmt.Sprintf("garbage %d\n", i)
		return direct.Create(ctx, store.BlobKey(digest.Bytes([]byte(data))), strings.NewReader(data))
	}))
	proxy.Reset()
	report, err := Collect(ctx, st, policy, later())
	must(t, err)
	if got := report.Deleted[KindBlob].Objects; got != n {
		t.Fatalf("deleted %d blobs, want %d", got, n)
	}
	if len(report.Versions) != 1 || report.Deleted[KindRelease].Objects != 1 {
		t.Errorf("deleted the versions %v (%d records), want app@1.0.0", report.Versions, report.Deleted[KindRelease].Objects)
	}
	want := (n+azstore.MaxBatch-1)/azstore.MaxBatch + 1
	if got := blobBatches(proxy.Calls("", "")); got != want {
		t.Errorf("%d Blob Batch requests for %d blobs and a version, want ceil(%d/%d) + 1 = %d", got, n, n, azstore.MaxBatch, want)
	}
	dels := proxy.Calls(http.MethodDelete, "")
	for _, c := range dels {
		if !strings.Contains(c.Path, "/p/"+store.MarkersPrefix) {
			t.Errorf("a DELETE of %s: objects go in Blob Batch requests", c.Path)
		}
	}
	if len(dels) != 3 {
		t.Errorf("%d DELETE requests, want 3 (a marker for the blobs' batch, one for the version's, and the clock probe's)", len(dels))
	}
	left, err := direct.List(ctx, store.FamilyBlob.Dir())
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("%d blobs left", len(left))
	}
}

// TestAzurePartialDeleteStops: when Azure refuses a key of a batch (here a
// listing under a lease another tool took), the collection stops with an
// error naming it and the lease, and nothing after it in the order of
// deletes goes: every blob the listing names stays.
func TestAzurePartialDeleteStops(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	b, err := azstore.New(ctx, testserver.AzuriteAccount, srv.NewContainer(t), "p", azstore.Settings{})
	must(t, err)
	st := store.New(b)
	m := publishTree(t, st, map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	loose := putBlob(t, st, "loose\n")
	expire(t, st)
	lc, err := lease.NewBlobClient(b.Container().NewBlobClient(b.BlobName(store.ListingKey(m.Digest()))), nil)
	must(t, err)
	_, err = lc.AcquireLease(ctx, -1, nil)
	must(t, err)
	report, err := Collect(ctx, st, policy, later())
	var de *DeleteError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), store.ListingKey(m.Digest())) || !strings.Contains(err.Error(), "active lease") {
		t.Fatalf("Collect: %v; want a DeleteError naming the listing and its lease", err)
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

// unbatched is an Azure backend without its batch delete: the collector
// deletes through it one Delete Blob at a time, as it did before Blob
// Batch (the benchmark's baseline).
type unbatched struct {
	azureBackend
}

type azureBackend interface {
	store.Backend
	store.Deleter
	Concurrency() int
}

// BenchmarkAzureCollect: collecting BENCH_AZ_OBJECTS (default 2000)
// unreferenced blobs on Azurite behind a proxy adding BENCH_AZ_RTT
// (default 20ms) to every request, deleting in Blob Batch requests and,
// as the baseline, one Delete Blob at a time. Each row reports its
// requests.
//
//	AZURITE_PATH=$(./scripts/azurite.sh) go test -run '^$' -bench AzureCollect -benchtime 1x ./internal/gc/
func BenchmarkAzureCollect(b *testing.B) {
	n, rtt := 2000, 20*time.Millisecond
	if v := os.Getenv("BENCH_AZ_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("BENCH_AZ_OBJECTS=%q: give a number of objects, at least 1", v)
		}
	}
	if v := os.Getenv("BENCH_AZ_RTT"); v != "" {
		var err error
		if rtt, err = time.ParseDuration(v); err != nil {
			b.Fatalf("BENCH_AZ_RTT=%q: %v", v, err)
		}
	}
	srv := testserver.StartAzurite(b)
	proxy := srv.Proxy(b, rtt)
	for _, mode := range []string{"batch", "one-by-one"} {
		b.Run(fmt.Sprintf("objects=%d/azblob/%s", n, mode), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				be, direct := azureBehind(b, srv, proxy)
				must(b, store.WriteIdentity(ctx, direct))
				benchBlobs(b, direct, mode, n)
				st := store.New(be)
				if mode == "one-by-one" {
					st = store.New(unbatched{be})
				}
				proxy.Reset()
				b.StartTimer()
				report, err := Collect(ctx, st, policy, later())
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := report.Deleted[KindBlob].Objects; got != n {
					b.Fatalf("deleted %d blobs, want %d", got, n)
				}
				b.ReportMetric(float64(n), "objects")
				b.ReportMetric(float64(len(proxy.Calls("", ""))), "req/op")
				b.ReportMetric(float64(blobBatches(proxy.Calls("", ""))), "BlobBatch")
				b.ReportMetric(float64(len(proxy.Calls(http.MethodDelete, ""))), "DELETE")
				b.StartTimer()
			}
		})
	}
}
