package export

import (
	"io/fs"
	"os"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// openRegular opens name in root for reading if it still is the regular
// file want describes: a named pipe or a link swapped in since the Lstat
// is refused instead of blocking or being followed.
func openRegular(root *os.Root, name string, want fs.FileInfo) (*os.File, error) {
	f, err := root.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(fi, want) {
		_ = f.Close() // nothing was read
		return nil, &digest.ChangedError{Path: name, Now: "another file"}
	}
	return f, nil
}
