//go:build !linux

package filestore

import "os"

// flush makes the given files and directories durable, an fsync each
// (there is no syncfs here).
func (b *Backend) flush(paths []string) error {
	return fsyncEach(paths)
}

// watch does nothing here: each file's own fsync reports its errors.
func (b *Backend) watch() {}

// writeback does nothing where sync_file_range(2) does not exist: each
// file's fsync at Commit writes it.
func writeback(*os.File) {}
