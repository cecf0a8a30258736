//go:build !linux

package filestore

// flush makes the given files and directories durable, an fsync each
// (there is no syncfs here).
func (b *Backend) flush(paths []string) error {
	return fsyncEach(paths)
}
