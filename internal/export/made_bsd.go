//go:build darwin || freebsd

package export

import (
	"os"
	"syscall"
)

// dirIDOf identifies the file f is open on, with its birth time.
func dirIDOf(f *os.File) (dirID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return dirID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirID{}, false
	}
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino), born: st.Birthtimespec.Nano()}, true //nolint:unconvert // types differ between systems
}
