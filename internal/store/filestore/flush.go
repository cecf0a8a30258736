package filestore

import (
	"errors"
	"os"
)

// fsyncEach makes the given files and directories durable, an fsync each.
func fsyncEach(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		_ = f.Close() // opened only to fsync it
		if err != nil && !errors.Is(err, os.ErrInvalid) {
			return err
		}
	}
	return nil
}
