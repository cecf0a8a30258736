package filestore

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfsFrom is how many paths flush makes durable with one syncfs(2) of
// the store's filesystem (as `sync` after `cp -r`) instead of an fsync
// each. syncfs writes back every dirty page of the filesystem, not only
// ours: the Go build cache and the working directory a build step wrote a
// moment before, other programs' files. Measured on a busy machine, one
// syncfs after a build step took 3 to 340 ms where the fsyncs of the step's
// few objects took under 1 ms each; a publish of thousands of files is
// where syncfs pays. Below this many paths, an fsync each.
const syncfsFrom = 32

// syncfs is unix.Syncfs; a variable so that tests can count the calls.
var syncfs = unix.Syncfs

// flush makes the given files and directories, all on the store's
// filesystem, durable: an fsync each when they are few, else one syncfs
// of that filesystem, which also covers directories a Stage created.
// Linux reports writeback errors to syncfs since 5.8.
func (b *Backend) flush(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := b.watched.failed(); err != nil {
		return err
	}
	if len(paths) < syncfsFrom {
		return fsyncEach(paths)
	}
	if fd := b.watched.fd(); fd != nil {
		return b.watched.fail(syncfs(int(fd.Fd())))
	}
	d, err := os.Open(b.root)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // opened only to name the filesystem
	return syncfs(int(d.Fd()))
}

// watch opens, once per process, the descriptor through which flush syncs
// the store's filesystem, before the first staged byte is written (Stage
// calls it once the temporary file exists, so the root does too). syncfs
// reports a writeback error to every descriptor opened before it
// happened, even one another program's sync has already been told of; a
// descriptor opened at Commit would miss such an error, and writeback
// starts long before Commit. A failure to open only loses that: flush
// then opens the root itself, as before.
func (b *Backend) watch() {
	b.watched.open(b.root)
}

// writeback asks the kernel to begin writing f's dirty pages now, without
// waiting for them: a hint, so that the disk works while a publish goes on
// copying and hashing and the flush at Commit finds little left to write
// (`cp -r` + `sync` leaves it all to the end). It never makes a blob
// durable — flush does — so its error is dropped: a failed write shows
// again at the flush.
func writeback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
