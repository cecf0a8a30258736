package export

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// renameNoReplace renames from to to unless to exists (fs.ErrExist): with
// RENAME_NOREPLACE the check and the rename are one step.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) { // a filesystem without it
		return renameNoReplacePortable(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// exchange puts from at to in one step; afterwards from holds what was at
// to (removed by the caller). When to does not exist it is a plain rename.
func exchange(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return renameNoReplace(from, to)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		return exchangePortable(from, to)
	}
	return &os.LinkError{Op: "exchange", Old: from, New: to, Err: err}
}

// syncTree makes everything under dir durable with one syncfs(2) of its
// filesystem instead of an fsync per file.
func syncTree(_ *os.Root, dir string, _ *digest.Listing) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // a directory opened to sync
	return unix.Syncfs(int(f.Fd()))
}

// dirIDOf identifies the file f is open on with statx(2): its birth time
// where the filesystem keeps one (ext4, xfs, btrfs, tmpfs), else 0.
func dirIDOf(f *os.File) (dirID, bool) {
	var st unix.Statx_t
	err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_BTIME, &st)
	if err != nil {
		return dirIDStat(f)
	}
	id := dirID{dev: unix.Mkdev(st.Dev_major, st.Dev_minor), ino: st.Ino}
	if st.Mask&unix.STATX_BTIME != 0 {
		id.born = st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
	}
	return id, true
}

// dirIDStat identifies f without a birth time, on a kernel without statx.
func dirIDStat(f *os.File) (dirID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return dirID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirID{}, false
	}
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // narrower on some architectures
}
