package azstore_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storetest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

const prefix = "some/prefix"

func newBackend(t *testing.T, containerName string) *azstore.Backend {
	t.Helper()
	b, err := azstore.New(context.Background(), testserver.AzuriteAccount, containerName, prefix, azstore.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Backend { return newBackend(t, srv.NewContainer(t)) },
		LoseAnswer: func(t *testing.T, b store.Backend, key string) store.Backend {
			ab, ok := b.(*azstore.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not an *azstore.Backend", b)
			}
			proxy := srv.Faulty(t, loseFirstWrite(ab.BlobName(key)))
			t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
			lb := newBackend(t, containerOf(ab))
			srv.Env(t) // the connection string is read by New only
			return lb
		},
		Tamper: func(t *testing.T, b store.Backend, key string, data []byte) {
			ab, ok := b.(*azstore.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not an *azstore.Backend", b)
			}
			_, err := ab.Container().NewBlockBlobClient(ab.BlobName(key)).Upload(context.Background(),
				streaming.NopCloser(bytes.NewReader(data)), nil)
			if err != nil {
				t.Fatal(err)
			}
		},
	})
}

// containerOf is the container of b, from its URL.
func containerOf(b *azstore.Backend) string {
	rest := strings.TrimPrefix(b.String(), "azblob://"+testserver.AzuriteAccount+"/")
	c, _, _ := strings.Cut(rest, "/")
	return c
}

// loseFirstWrite loses the answer of the first request that makes a blob
// visible at one of names (a Put Blob, or a Put Block List): the blob is
// stored, and its writer cannot know.
func loseFirstWrite(names ...string) testserver.FaultFunc {
	return func(c testserver.Call, tries int) testserver.Fault {
		makesVisible := c.Method == http.MethodPut && !strings.Contains(c.Query, "comp=block&") && !strings.HasSuffix(c.Query, "comp=block") ||
			c.Method == http.MethodPut && strings.Contains(c.Query, "comp=blocklist")
		for _, n := range names {
			if makesVisible && tries == 0 && strings.HasSuffix(c.Path, "/"+n) {
				return testserver.LoseAnswer
			}
		}
		return testserver.Pass
	}
}
