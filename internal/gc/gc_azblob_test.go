package gc

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

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
	code, stdout, stderr = run("--store", url)
	if code != 1 || strings.Contains(stderr, "provider's `") || !strings.Contains(stderr, "access denied") ||
		!strings.Contains(stderr, "delete permission") {
		t.Fatalf("a publisher's credentials: exit %d\n%s%s", code, stdout, stderr)
	}
}
