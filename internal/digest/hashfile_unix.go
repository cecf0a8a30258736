//go:build unix

package digest

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"syscall"
)

// HashFile returns the digest and size of one file, streamed through a
// pooled buffer. It reads with plain read(2) on a file descriptor rather
// than through *os.File, which would register each of thousands of small
// files with the runtime's poller for nothing: regular files never block.
func HashFile(ctx context.Context, path string) (Sum, int64, error) {
	var sum Sum
	fd, err := openRead(path)
	if err != nil {
		return sum, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return sum, n, err
		}
		m, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
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

func openRead(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
