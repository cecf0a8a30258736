package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// VerifyTree reads the blobs at once but names the first damaged entry in
// listing order, whichever worker finds its damage first, and reads a
// blob shared by several entries once.
func TestVerifyTreeNamesTheFirstDamagedEntry(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	fb, err := filestore.New(root)
	must(t, err)
	st := store.New(fb)
	src := t.TempDir()
	for i := range 40 {
		must(t, os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), fmt.Appendf(nil, "file %d\n", i), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(src, "same-as-f00"), []byte("file 0\n"), 0o644))
	m, err := st.PutDir(ctx, src, digest.Options{})
	must(t, err)
	must(t, st.VerifyTree(ctx, m.Digest(), m))

	damage := func(name string) {
		for _, e := range m.Entries {
			if e.Path != name {
				continue
			}
			p := filepath.Join(root, filepath.FromSlash(store.BlobKey(e.SHA256)))
			must(t, os.Chmod(p, 0o644))
			must(t, os.WriteFile(p, []byte("damaged"), 0o644))
		}
	}
	damage("f31")
	damage("f07")
	err = st.VerifyTree(ctx, m.Digest(), m)
	if err == nil || !strings.Contains(err.Error(), `file "f07"`) {
		t.Fatalf("VerifyTree = %v, want the first damaged entry in listing order, f07", err)
	}
}
