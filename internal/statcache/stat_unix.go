//go:build linux || darwin || freebsd

package statcache

import (
	"io/fs"
	"syscall"
)

// StatOf extracts the matched fields of a FileInfo.
func StatOf(fi fs.FileInfo) (Stat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Stat{}, false
	}
	return Stat{
		Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(),
		CtimeNS: ctimeNS(st), Ino: uint64(st.Ino), Dev: uint64(st.Dev), Mode: uint32(fi.Mode()),
	}, true
}
