//go:build unix

package digest

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"syscall"
)

// HashFile returns the digest and size of the regular file at path, as a
// source the user named: a symlink at path itself is followed. It never
// blocks on a FIFO or device put in the file's place.
func HashFile(ctx context.Context, path string) (Sum, int64, error) {
	return hashFD(ctx, path, true, nil)
}

// HashListed hashes a file that a walk listed with lstat as info. The file
// is opened without following a symlink, and what was opened must be the
// regular file lstat described (same device and inode): a file swapped for
// a symlink (to /etc/shadow, say), a FIFO or another file between the
// listing and the read fails with a *ChangedError instead of being read.
func HashListed(ctx context.Context, path string, info fs.FileInfo) (Sum, int64, error) {
	return hashFD(ctx, path, false, info)
}

// OpenListed opens a file for reading the way HashListed does. With a nil
// info, a symlink at path is followed (a source the user named) but the
// result must still be a regular file.
func OpenListed(path string, info fs.FileInfo) (*os.File, error) {
	fd, err := openChecked(path, info == nil, info)
	if err != nil {
		return nil, err
	}
	// Blocking again, so os.NewFile does not register it with the poller.
	if err := syscall.SetNonblock(fd, false); err != nil {
		_ = syscall.Close(fd) // refused before anything was read
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openChecked opens path read-only and non-blocking (opening a FIFO must
// not wait for a writer), refuses to follow a final symlink unless follow,
// and checks what it opened: a regular file, the one want describes.
func openChecked(path string, follow bool, want fs.FileInfo) (int, error) {
	flags := syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	if !follow {
		flags |= syscall.O_NOFOLLOW
	}
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, flags, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.ELOOP && !follow {
		return -1, &ChangedError{Path: path, Now: "a symlink"}
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd) // refused before anything was read
		return -1, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		_ = syscall.Close(fd)                      // refused before anything was read
		now := TypeName(modeType(uint32(st.Mode))) //nolint:unconvert // st.Mode is a uint16 on darwin
		return -1, &ChangedError{Path: path, Now: now}
	}
	if want != nil {
		if ws, ok := want.Sys().(*syscall.Stat_t); ok && (ws.Dev != st.Dev || ws.Ino != st.Ino) {
			_ = syscall.Close(fd) // refused before anything was read
			return -1, &ChangedError{Path: path, Now: "another file"}
		}
	}
	return fd, nil
}

func modeType(m uint32) fs.FileMode {
	switch m & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		return fs.ModeSocket
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		return fs.ModeDevice
	case syscall.S_IFDIR:
		return fs.ModeDir
	case syscall.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}

// hashFD streams the file through a pooled buffer with plain read(2) on a
// descriptor rather than through *os.File, which would register each of
// thousands of small files with the runtime's poller for nothing.
func hashFD(ctx context.Context, path string, follow bool, want fs.FileInfo) (Sum, int64, error) {
	var sum Sum
	fd, err := openChecked(path, follow, want)
	if err != nil {
		return sum, 0, err
	}
	defer func() { _ = syscall.Close(fd) }() // read-only
	bp := getBuf()
	defer bufPool.Put(bp)
	buf := *bp
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return sum, n, err
		}
		m, err := syscall.Read(fd, buf)
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil {
			return sum, n, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		h.Write(buf[:m])
		n += int64(m)
	}
	h.Sum(sum[:0])
	return sum, n, nil
}
