package store_test

import (
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestLocalRoot: a file store names its directory (the artifact and
// export resources keep their writes out of it); a backend without a
// root (S3) names none.
func TestLocalRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	fb, err := filestore.New(root)
	must(t, err)
	if got := store.New(fb).LocalRoot(); got != fb.Root() || got == "" {
		t.Fatalf("LocalRoot = %q, want %q", got, fb.Root())
	}
	hidden := struct{ store.Backend }{fb} // the Backend methods only: no Root
	if got := store.New(hidden).LocalRoot(); got != "" {
		t.Fatalf("LocalRoot of a backend without a root = %q, want \"\"", got)
	}
}
