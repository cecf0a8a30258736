package artifact

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// newSources returns the sources of one operation on a new local store
// at storeDir, hashing without a stat cache.
func newSources(t *testing.T, storeDir string) (*Sources, *store.Store) {
	t.Helper()
	b, err := filestore.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	return New(st, statcache.NewMemo(nil), archive.NewRefs(st)), st
}

// write creates files under dir, a trailing * marking one executable.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if name[len(name)-1] == '*' {
			name, mode = name[:len(name)-1], 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newSourcesOn returns the sources of another operation on st.
func newSourcesOn(st *store.Store) *Sources {
	return New(st, statcache.NewMemo(nil), archive.NewRefs(st))
}
