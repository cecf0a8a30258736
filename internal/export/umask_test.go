//go:build unix

package export

import (
	"io/fs"
	"syscall"
)

func fsUmask(m int) int { return syscall.Umask(m) }

func inodeOf(fi fs.FileInfo) uint64 {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	return uint64(st.Ino) //nolint:unconvert // not uint64 on every unix
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
