package provider

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// The acceptance tests' Azurite: one for the process, started by the
// first test that needs it, since parallel tests cannot each set
// AZURE_STORAGE_CONNECTION_STRING (it is set once, for the process); each
// test has a container of its own.
var (
	azuriteOnce sync.Once
	azurite     *testserver.Azurite
	azuriteStop = func() {}
	azuriteErr  error
)

// stopAzurite stops the process's Azurite, if a test started it.
func stopAzurite() { azuriteStop() }

func sharedAzurite(t *testing.T) *testserver.Azurite {
	t.Helper()
	bin := testserver.AzuritePath(t)
	azuriteOnce.Do(func() {
		azurite, azuriteStop, azuriteErr = testserver.StartSharedAzurite(bin)
		if azuriteErr == nil {
			// For the process, not the test: every parallel test reads it.
			azuriteErr = os.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(azurite.Endpoint)) //nolint:usetesting // see above
		}
	})
	if azuriteErr != nil {
		t.Fatal(azuriteErr)
	}
	return azurite
}

// forEachStoreAndAzure runs a test as forEachStore does, and then on an
// Azure Blob Storage store (azblob://) served by Azurite.
func forEachStoreAndAzure(t *testing.T, test func(t *testing.T, e *env)) {
	forEachStore(t, test)
	t.Run("azblob", func(t *testing.T) {
		a := sharedAzurite(t)
		test(t, &env{t: t, container: a.NewContainer(t), dir: filepath.Join(t.TempDir(), "src")})
	})
}
