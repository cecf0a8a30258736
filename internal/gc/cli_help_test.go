package gc

import (
	"strings"
	"testing"
)

// TestHelpNamesEveryStore: gc -h says how to write each store URL, where
// each backend's credentials come from, and the delete permission the
// collector needs on each.
func TestHelpNamesEveryStore(t *testing.T) {
	code, _, stderr := run("-h")
	if code != 0 {
		t.Fatalf("gc -h: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"s3://BUCKET/PREFIX", "gs://BUCKET/PREFIX", "azblob://ACCOUNT/CONTAINER/PREFIX",
		"Application Default Credentials", "DefaultAzureCredential", "AZURE_STORAGE_CONNECTION_STRING",
		"s3:DeleteObject", "storage.objects.delete", "Storage Blob Data Contributor",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("gc -h does not say %q:\n%s", want, stderr)
		}
	}
	if i := strings.Index(stderr, "  -store"); i < 0 || !strings.Contains(stderr[i:], "azblob://") {
		t.Errorf("gc -h: the -store option does not name azblob://:\n%s", stderr)
	}
}
