//go:build !linux

package filestore

import "os"

// flush makes the given files and directories durable, an fsync each
// (there is no syncfs here).
func (b *Backend) flush(paths []string) error {
	return fsyncEach(paths)
}

// writeback does nothing where sync_file_range(2) does not exist: each
// file's fsync at Commit writes it.
func writeback(*os.File) {}
