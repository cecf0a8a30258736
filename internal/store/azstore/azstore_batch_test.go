package azstore_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// fillBlobs stores n blobs through b and returns their keys.
func fillBlobs(t *testing.T, b store.Backend, n int) []string {
	t.Helper()
	keys := make([]string, n)
	err := store.ForEach(context.Background(), 16, n, func(ctx context.Context, i int) error {
		data := fmt.Sprintf("garbage %d\n", i)
		keys[i] = store.BlobKey(digest.Bytes([]byte(data)))
		return b.Create(ctx, keys[i], strings.NewReader(data))
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// batchCalls are the Blob Batch requests among calls.
func batchCalls(calls []testserver.Call) []testserver.Call {
	var out []testserver.Call
	for _, c := range calls {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") {
			out = append(out, c)
		}
	}
	return out
}

// proxied returns a backend on containerName whose requests go through a
// proxy that does to each what faults decides (nil: nothing), and the
// proxy.
func proxied(t *testing.T, srv *testserver.Azurite, containerName string, faults testserver.FaultFunc) (*azstore.Backend, *testserver.Counter) {
	t.Helper()
	proxy := srv.Faulty(t, faults)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	b := newBackend(t, containerName)
	srv.Env(t) // the connection string is read by New only
	return b, proxy
}

// TestDeleteManyBatches: a collector's delete of n blobs (and of keys
// never stored) is ceil(n/azstore.MaxBatch) Blob Batch requests and no Delete Blob;
// every key's result is nil, and exactly those blobs are gone.
func TestDeleteManyBatches(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, 2*azstore.MaxBatch+10)
	stay, doomed := keys[:10], keys[10:]
	doomed = append(doomed, store.BlobKey(digest.Bytes([]byte("never stored"))), "blobs/sha256/00/none")
	b, proxy := proxied(t, srv, containerName, nil)

	errs := store.DeleteMany(context.Background(), b, 8, doomed)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", doomed[i], err)
		}
	}
	want := (len(doomed) + azstore.MaxBatch - 1) / azstore.MaxBatch
	if got := len(batchCalls(proxy.Calls("", ""))); got != want {
		t.Errorf("%d Blob Batch requests for %d keys, want ceil(%d/%d) = %d", got, len(doomed), len(doomed), azstore.MaxBatch, want)
	}
	if dels := proxy.Calls(http.MethodDelete, ""); len(dels) != 0 {
		t.Errorf("%d Delete Blob requests, such as %s: blobs go in Blob Batch requests", len(dels), dels[0].Path)
	}
	if all := proxy.Calls("", ""); len(all) != want {
		t.Errorf("%d requests in all, want the %d batches", len(all), want)
	}
	left, err := direct.List(context.Background(), store.FamilyBlob.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != len(stay) {
		t.Fatalf("%d blobs left, want the %d not deleted", len(left), len(stay))
	}
}

// TestDeleteManyLeasedBlob: a blob under a lease cannot be deleted: its
// key's result names it and the lease; the other keys of its batch are
// deleted and their results nil.
func TestDeleteManyLeasedBlob(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, 20)
	leased := keys[7]
	lc, err := lease.NewBlobClient(direct.Container().NewBlobClient(direct.BlobName(leased)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.AcquireLease(context.Background(), -1, nil); err != nil {
		t.Fatal(err)
	}
	b, proxy := proxied(t, srv, containerName, nil)

	errs := store.DeleteMany(context.Background(), b, 8, keys)
	for i, err := range errs {
		switch {
		case keys[i] == leased && err == nil:
			t.Fatalf("%s: leased, reported deleted", keys[i])
		case keys[i] == leased:
			if !strings.Contains(err.Error(), direct.BlobName(leased)) || !strings.Contains(err.Error(), "active lease") ||
				!strings.Contains(err.Error(), "lease break") {
				t.Fatalf("the leased blob's error does not name it, the lease and what to do: %v", err)
			}
		case err != nil:
			t.Fatalf("%s: %v", keys[i], err)
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); n != 1 || len(proxy.Calls("", "")) != 1 {
		t.Errorf("%d Blob Batch requests of %d requests for 20 keys, want 1 of 1", n, len(proxy.Calls("", "")))
	}
	left, err := direct.List(context.Background(), store.FamilyBlob.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != leased {
		t.Fatalf("left %v, want only the leased %s", left, leased)
	}
}

// TestDeleteManyRetriesALostBatch: a batch whose answer is lost, its
// deletes carried out, is sent again; the retry finds the blobs gone
// (404 BlobNotFound), which counts as deleted.
func TestDeleteManyRetriesALostBatch(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, 30)
	b, proxy := proxied(t, srv, containerName, func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") && tries == 0 {
			return testserver.LoseAnswer
		}
		return testserver.Pass
	})
	errs := store.DeleteMany(context.Background(), b, 8, keys)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
	}
	calls := batchCalls(proxy.Calls("", ""))
	if len(calls) != 2 || calls[0].Fault != testserver.LoseAnswer || calls[1].Status != http.StatusAccepted {
		t.Fatalf("Blob Batch requests %+v, want the lost one and its retry, answered 202", calls)
	}
	if left, err := direct.List(context.Background(), ""); err != nil || len(left) != 0 {
		t.Fatalf("left %v (%v), want nothing", left, err)
	}
}

// TestDeleteManyWithoutBlobBatch: an endpoint that refuses Blob Batch
// (400, as an account without it would) gets one Delete Blob per key,
// every key's result nil; a later call sends no batch at all.
func TestDeleteManyWithoutBlobBatch(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, azstore.MaxBatch+20)
	b, proxy := proxied(t, srv, containerName, func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") {
			return testserver.BadRequest
		}
		return testserver.Pass
	})
	first, second := keys[:azstore.MaxBatch+10], keys[azstore.MaxBatch+10:]
	for _, ks := range [][]string{first, second} {
		for i, err := range store.DeleteMany(context.Background(), b, 8, ks) {
			if err != nil {
				t.Fatalf("%s: %v", ks[i], err)
			}
		}
	}
	// The first call's two batches may both be sent before either is
	// refused; none after.
	if n := len(batchCalls(proxy.Calls("", ""))); n < 1 || n > 2 {
		t.Errorf("%d Blob Batch requests, want the first call's 1 or 2 refused, then none", n)
	}
	if n := len(proxy.Calls(http.MethodDelete, "")); n != len(keys) {
		t.Errorf("%d Delete Blob requests, want one per key, %d", n, len(keys))
	}
	if left, err := direct.List(context.Background(), ""); err != nil || len(left) != 0 {
		t.Fatalf("left %v (%v), want nothing", left, err)
	}
}

// TestDeleteManyWithinConcurrency: batches keep to the backend's request
// limits: five batches on a backend of MaxConcurrency 2, each taking at
// least 200 ms, are never more than two in flight.
func TestDeleteManyWithinConcurrency(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	keys := fillBlobs(t, newBackend(t, containerName), 5*azstore.MaxBatch)
	proxy := srv.Proxy(t, 200*time.Millisecond)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	b, err := azstore.New(context.Background(), testserver.AzuriteAccount, containerName, prefix, azstore.Settings{MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range store.DeleteMany(context.Background(), b, 8, keys) {
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); n != 5 || len(proxy.Calls("", "")) != 5 {
		t.Errorf("%d Blob Batch requests of %d requests, want 5 of 5", n, len(proxy.Calls("", "")))
	}
	if n := proxy.MaxInFlight(); n != 2 {
		t.Errorf("%d batches in flight at most, want MaxConcurrency, 2", n)
	}
}

// TestDeleteManyWithoutDeletePermission: a SAS without the permission d
// lets the batch in and Azure refuses each delete in it (403): each key's
// result says access was denied and which permission the collector
// needs, and every blob stays.
func TestDeleteManyWithoutDeletePermission(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, 3)
	cred, err := azblob.NewSharedKeyCredential(testserver.AzuriteAccount, testserver.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: containerName,
		Permissions: (&sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, List: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	proxy := srv.Count(t)
	t.Setenv(azstore.ConnectionStringEnv, "BlobEndpoint="+proxy.Endpoint+"/"+testserver.AzuriteAccount+";SharedAccessSignature="+q.Encode())
	b := newBackend(t, containerName)
	for i, err := range store.DeleteMany(context.Background(), b, 8, keys) {
		if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "the permission d") ||
			!strings.Contains(err.Error(), b.BlobName(keys[i])) {
			t.Errorf("%s: %v; want access denied, naming the key and the permission", keys[i], err)
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); n != 1 {
		t.Errorf("%d Blob Batch requests, want 1", n)
	}
	if left, err := direct.List(context.Background(), ""); err != nil || len(left) != len(keys) {
		t.Fatalf("left %v (%v), want every blob", left, err)
	}
}

// TestDeleteManyRetriesABusyDelete: a delete of a batch that Azure answers
// 503 ServerBusy goes again, alone, in a batch of its own; its retry finds
// the blob gone (its first try landed), which counts as deleted. With one
// attempt allowed, the 503 is the key's result and the other keys' are
// nil.
func TestDeleteManyRetriesABusyDelete(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	busyFirst := func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") && tries == 0 {
			return testserver.FirstPartBusy
		}
		return testserver.Pass
	}
	keys := fillBlobs(t, direct, 30)
	b, proxy := proxied(t, srv, containerName, busyFirst)
	for i, err := range store.DeleteMany(context.Background(), b, 8, keys) {
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
	}
	calls := batchCalls(proxy.Calls("", ""))
	if len(calls) != 2 || calls[0].Fault != testserver.FirstPartBusy || calls[1].Fault != testserver.Pass {
		t.Fatalf("Blob Batch requests %+v, want the one whose first delete was answered busy, and its retry", calls)
	}
	if left, err := direct.List(context.Background(), ""); err != nil || len(left) != 0 {
		t.Fatalf("left %v (%v), want nothing", left, err)
	}

	keys = fillBlobs(t, direct, 30)
	proxy = srv.Faulty(t, busyFirst)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	once, err := azstore.New(context.Background(), testserver.AzuriteAccount, containerName, prefix, azstore.Settings{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i, err := range store.DeleteMany(context.Background(), once, 8, keys) {
		if err != nil {
			failed++
			if !strings.Contains(err.Error(), "503 ServerBusy") || !strings.Contains(err.Error(), once.BlobName(keys[i])) {
				t.Errorf("%s: %v; want the 503 naming the key", keys[i], err)
			}
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); failed != 1 || n != 1 {
		t.Fatalf("%d keys failed in %d Blob Batch requests, want 1 in 1", failed, n)
	}
}

// proxiedTries is proxied with MaxAttempts attempts.
func proxiedTries(t *testing.T, srv *testserver.Azurite, containerName string, attempts int, faults testserver.FaultFunc) (*azstore.Backend, *testserver.Counter) {
	t.Helper()
	proxy := srv.Faulty(t, faults)
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	b, err := azstore.New(context.Background(), testserver.AzuriteAccount, containerName, prefix, azstore.Settings{MaxAttempts: attempts})
	if err != nil {
		t.Fatal(err)
	}
	srv.Env(t) // the connection string is read by New only
	return b, proxy
}

// TestDeleteManyTriesOnce: a key is in at most MaxAttempts Blob Batch
// requests in all, the SDK's retries of a batch failing whole counted
// with the resends of a delete answered busy, and its error says how
// many: every batch answered 503, or the first batch's first delete
// answered busy and every later batch 503.
func TestDeleteManyTriesOnce(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	for name, first := range map[string]testserver.Fault{"whole": testserver.SlowDown, "busy then whole": testserver.FirstPartBusy} {
		keys := fillBlobs(t, direct, 5)
		b, proxy := proxiedTries(t, srv, containerName, 3, func(c testserver.Call, tries int) testserver.Fault {
			switch {
			case c.Method != http.MethodPost || !strings.Contains(c.Query, "comp=batch"):
				return testserver.Pass
			case tries == 0:
				return first
			}
			return testserver.SlowDown
		})
		errs := store.DeleteMany(context.Background(), b, 8, keys)
		if n := len(batchCalls(proxy.Calls("", ""))); n != 3 {
			t.Errorf("%s: %d Blob Batch requests, want 3 (MaxAttempts)", name, n)
		}
		failed := 0
		for i, err := range errs {
			if err == nil {
				continue // the busy batch's other deletes landed
			}
			failed++
			if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "3 times") {
				t.Errorf("%s: %s: %v, want the 503 after 3 attempts", name, keys[i], err)
			}
		}
		if want := map[bool]int{true: len(keys), false: 1}[first == testserver.SlowDown]; failed != want {
			t.Errorf("%s: %d keys failed, want %d", name, failed, want)
		}
		for _, k := range keys {
			if err := direct.Delete(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDeleteManyRetriesAnUnansweredDelete: a delete its batch's answer
// says nothing of (a part without a Content-ID), or all the deletes of an
// answer the SDK cannot read (a part short), go again, within the keys'
// budget; the retry finds the blobs gone (the first try landed), which
// counts as deleted. With one attempt allowed, the key's error says its
// delete was not answered.
func TestDeleteManyRetriesAnUnansweredDelete(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	firstBatch := func(f testserver.Fault) testserver.FaultFunc {
		return func(c testserver.Call, tries int) testserver.Fault {
			if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") && tries == 0 {
				return f
			}
			return testserver.Pass
		}
	}
	for _, f := range []testserver.Fault{testserver.FirstPartUnnamed, testserver.FirstPartDropped} {
		keys := fillBlobs(t, direct, 30)
		b, proxy := proxied(t, srv, containerName, firstBatch(f))
		for i, err := range store.DeleteMany(context.Background(), b, 8, keys) {
			if err != nil {
				t.Fatalf("%s: %s: %v", f, keys[i], err)
			}
		}
		calls := batchCalls(proxy.Calls("", ""))
		if len(calls) != 2 || calls[0].Fault != f || calls[1].Fault != testserver.Pass {
			t.Fatalf("%s: Blob Batch requests %+v, want the first and its retry", f, calls)
		}
		if left, err := direct.List(context.Background(), ""); err != nil || len(left) != 0 {
			t.Fatalf("%s: left %v (%v), want nothing", f, left, err)
		}
	}

	keys := fillBlobs(t, direct, 30)
	once, proxy := proxiedTries(t, srv, containerName, 1, firstBatch(testserver.FirstPartUnnamed))
	failed := 0
	for i, err := range store.DeleteMany(context.Background(), once, 8, keys) {
		if err != nil {
			failed++
			if !strings.Contains(err.Error(), "said nothing of it") || !strings.Contains(err.Error(), once.BlobName(keys[i])) {
				t.Errorf("%s: %v; want no answer, naming the key", keys[i], err)
			}
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); failed != 1 || n != 1 {
		t.Fatalf("%d keys failed in %d Blob Batch requests, want 1 in 1", failed, n)
	}
}

// TestDeleteManyBatchForbidden: a Blob Batch request refused as a whole
// (403) fails each of its keys saying the batch was refused and that
// deleting needs the delete permission (the role, a SAS's d), as a
// single delete's 403 says, not blaming the store's settings; every blob
// stays.
func TestDeleteManyBatchForbidden(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	containerName := srv.NewContainer(t)
	direct := newBackend(t, containerName)
	keys := fillBlobs(t, direct, 3)
	b, proxy := proxied(t, srv, containerName, func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPost && strings.Contains(c.Query, "comp=batch") {
			return testserver.Forbidden
		}
		return testserver.Pass
	})
	for i, err := range store.DeleteMany(context.Background(), b, 8, keys) {
		if err == nil {
			t.Fatalf("%s: deleted through a refused batch", keys[i])
		}
		for _, want := range []string{b.BlobName(keys[i]), "refused the Blob Batch request", "403", "Storage Blob Data Contributor", "the permission d"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not say %q: %v", keys[i], want, err)
			}
		}
		if strings.Contains(err.Error(), "Check the") {
			t.Errorf("%s: the error blames the settings: %v", keys[i], err)
		}
	}
	if n := len(batchCalls(proxy.Calls("", ""))); n != 1 {
		t.Errorf("%d Blob Batch requests, want 1: a refusal is not retried", n)
	}
	if left, err := direct.List(context.Background(), ""); err != nil || len(left) != len(keys) {
		t.Fatalf("left %v (%v), want every blob", left, err)
	}
}
