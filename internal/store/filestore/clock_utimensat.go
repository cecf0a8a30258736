//go:build linux || freebsd

package filestore

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// StoreTime implements store.Clock: the store's root directory gets the
// filesystem's time (utimensat with UTIME_NOW), which is read back. It
// stores no data, so it works on a full disk, which is the only place the
// collector uses it: it needs write permission on (or ownership of) the
// root, changes the root's time (which backups see), and on some network
// filesystems (SMB, FUSE, 9p) gets this machine's time, not the server's.
func (b *Backend) StoreTime(context.Context) (time.Time, error) {
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, b.root, now, 0); err != nil {
		return time.Time{}, b.writeError(&os.PathError{Op: "utimensat", Path: b.root, Err: err})
	}
	fi, err := os.Stat(b.root)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
