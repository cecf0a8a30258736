package signcli

import (
	"strings"
	"testing"
)

// TestHelpNamesEveryStore: each command's -h says how to write each store
// URL and where each backend's credentials come from.
func TestHelpNamesEveryStore(t *testing.T) {
	for _, cmd := range Commands {
		code, _, stderr := run(cmd, "-h")
		if code != 0 {
			t.Fatalf("%s -h: exit %d\n%s", cmd, code, stderr)
		}
		for _, want := range []string{
			"s3://BUCKET/PREFIX", "gs://BUCKET/PREFIX", "azblob://ACCOUNT/CONTAINER/PREFIX",
			"Application Default Credentials", "DefaultAzureCredential", "AZURE_STORAGE_CONNECTION_STRING",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s -h does not say %q:\n%s", cmd, want, stderr)
			}
		}
		if i := strings.Index(stderr, "  -store"); i < 0 || !strings.Contains(stderr[i:], "azblob://") {
			t.Errorf("%s -h: the -store option does not name azblob://:\n%s", cmd, stderr)
		}
	}
}
