//go:build !linux

package export

import (
	"os"
	"path"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func renameNoReplace(from, to string) error { return renameNoReplacePortable(from, to) }

func exchange(from, to string) error { return exchangePortable(from, to) }

// syncTree fsyncs every file and directory of the listing under root.
func syncTree(root *os.Root, _ string, m *digest.Listing) error {
	dirs := map[string]bool{".": true}
	for _, e := range m.Entries {
		dirs[path.Dir(e.Path)] = true
		if e.Kind == digest.KindSymlink {
			continue
		}
		if err := syncPath(root, e.Path); err != nil {
			return err
		}
	}
	for d := range dirs {
		_ = syncPath(root, d) // directories cannot be opened for sync everywhere (Windows)
	}
	return nil
}

func syncPath(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // opened to sync
	return f.Sync()
}
