//go:build !linux

package filestore

import (
	"errors"
	"os"
)

// flush makes the given files and directories durable, an fsync each
// (there is no syncfs here).
func (b *Backend) flush(paths []string) error {
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
