package azstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// ops runs every Backend operation a plan or an apply makes.
func ops(b store.Backend) map[string]func() error {
	ctx := context.Background()
	return map[string]func() error{
		"exists": func() error { _, err := b.Exists(ctx, "blobs/x"); return err },
		"list":   func() error { _, err := b.List(ctx, "releases/"); return err },
		"open":   func() error { _, err := b.Open(ctx, "blobs/x"); return err },
		"create": func() error { return b.Create(ctx, "blobs/x", strings.NewReader("x")) },
	}
}

// wantError checks that err is an *azstore.Error saying each of wants,
// and never the account key.
func wantError(t *testing.T, name string, err error, wants ...string) {
	t.Helper()
	var e *azstore.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: want an *azstore.Error, got %T %v", name, err, err)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: the error does not say %q: %v", name, w, err)
		}
	}
	if strings.Contains(err.Error(), testserver.AzuriteKey[:20]) {
		t.Errorf("%s: the error repeats the account key: %v", name, err)
	}
}

// TestBadSettings: a missing container, another account's connection
// string, an account that does not resolve, an unreachable endpoint and a
// wrong key each fail fast with an error that says what to check.
func TestBadSettings(t *testing.T) {
	srv := testserver.StartAzurite(t)
	ctx := context.Background()

	t.Run("missing container", func(t *testing.T) {
		srv.Env(t)
		b := newBackend(t, "no-such-container")
		for name, op := range ops(b) {
			wantError(t, name, op(), `the container "no-such-container" does not exist in the storage account "devstoreaccount1"`,
				"`store`", "az storage container create")
		}
	})
	t.Run("another account's connection string", func(t *testing.T) {
		srv.Env(t)
		_, err := azstore.New(ctx, "otheraccount", "c", "", azstore.Settings{})
		if err == nil || !strings.Contains(err.Error(), `the storage account "devstoreaccount1"`) ||
			!strings.Contains(err.Error(), `in the account "otheraccount"`) || strings.Contains(err.Error(), testserver.AzuriteKey[:20]) {
			t.Fatalf("want an account mismatch error, got %v", err)
		}
	})
	t.Run("account that does not resolve", func(t *testing.T) {
		t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString("http://nosuchaccount.invalid:10000"))
		b := newBackend(t, "c")
		start := time.Now()
		_, err := b.Exists(ctx, "blobs/x")
		wantError(t, "exists", err, `the storage account "devstoreaccount1" was not found`, "does not resolve", "BlobEndpoint")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %v: a name that does not resolve is not retried", d)
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil { // nothing listens there now
			t.Fatal(err)
		}
		t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString("http://"+addr))
		start := time.Now()
		_, err = newBackend(t, "c").Exists(ctx, "blobs/x")
		wantError(t, "exists", err, "cannot reach", "gave up after 3 attempts")
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("gave up after %v: retries are not bounded", d)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		containerName := srv.NewContainer(t)
		t.Setenv(azstore.ConnectionStringEnv, strings.Replace(testserver.ConnectionString(srv.Endpoint), testserver.AzuriteKey,
			"d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleQ==", 1))
		b := newBackend(t, containerName)
		for name, op := range ops(b) {
			wantError(t, name, op(), "credentials were rejected", azstore.ConnectionStringEnv)
		}
	})
}

// TestReadOnlyIdentity: credentials that may read and list but not write
// (a SAS with r and l, as the Storage Blob Data Reader role allows) plan,
// and an apply fails naming the role that writes; one that may not delete
// fails a collection naming the collector's permission.
func TestReadOnlyIdentity(t *testing.T) {
	srv := testserver.StartAzurite(t)
	containerName := srv.NewContainer(t)
	srv.Env(t)
	ctx := context.Background()
	if err := newBackend(t, containerName).Create(ctx, "blobs/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	cred, err := azblob.NewSharedKeyCredential(testserver.AzuriteAccount, testserver.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: containerName,
		Permissions: (&sas.ContainerPermissions{Read: true, List: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(azstore.ConnectionStringEnv, "BlobEndpoint="+srv.Endpoint+"/"+testserver.AzuriteAccount+";SharedAccessSignature="+q.Encode())
	b := newBackend(t, containerName)
	if ok, err := b.Exists(ctx, "blobs/x"); !ok || err != nil {
		t.Fatalf("a reader cannot read: %v %v", ok, err)
	}
	if _, err := b.List(ctx, "blobs/"); err != nil {
		t.Fatalf("a reader cannot list: %v", err)
	}
	err = b.Create(ctx, "blobs/y", strings.NewReader("y"))
	wantError(t, "create", err, "access denied", "Storage Blob Data Contributor")
	err = b.Delete(ctx, "blobs/x")
	wantError(t, "delete", err, "access denied", "collector", "delete")
}

// TestNoCredentials: with no connection string and nothing in the Azure
// default credential chain (no environment, no CLI login, no managed
// identity), every operation fails saying so and how to log in, without
// blaming the endpoint, and nothing is sent.
func TestNoCredentials(t *testing.T) {
	for _, k := range []string{azstore.ConnectionStringEnv, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_TOKEN_CREDENTIALS",
		"IDENTITY_ENDPOINT", "MSI_ENDPOINT"} {
		t.Setenv(k, "") // restored when the test ends
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", t.TempDir()) // no az, no azd
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AZURE_CONFIG_DIR", t.TempDir())
	b, err := azstore.New(context.Background(), "someaccount", "some-container", "", azstore.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for name, op := range ops(b) {
		err := op()
		var nc *azstore.NoCredentialsError
		if !errors.As(err, &nc) {
			t.Errorf("%s: want a no-credentials error, got %v", name, err)
			continue
		}
		wantError(t, name, err, "no Azure credentials could be obtained", "az login", "managed identity", azstore.ConnectionStringEnv)
		if strings.Contains(err.Error(), "access denied") || strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("%s: error blames the endpoint: %v", name, err)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("finding no credentials took %v", d)
	}
}
