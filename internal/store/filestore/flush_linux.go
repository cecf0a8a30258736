package filestore

import (
	"os"

	"golang.org/x/sys/unix"
)

// flush makes the given files and directories, all on the store's
// filesystem, durable: one syncfs(2) of that filesystem instead of an
// fsync each (as `sync` after `cp -r`), which also covers directories a
// Stage created. Linux reports writeback errors to syncfs since 5.8.
func (b *Backend) flush(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	d, err := os.Open(b.root)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // opened only to name the filesystem
	return unix.Syncfs(int(d.Fd()))
}
