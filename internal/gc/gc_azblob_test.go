package gc

import (
	"testing"

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
