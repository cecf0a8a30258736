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
		CtimeNS: ctimeNS(st), Ino: st.Ino, Mode: uint32(fi.Mode()),
		// Dev is uint64 on linux/amd64, where the linter runs, but int32
		// on darwin and uint32 on linux/mips*: the conversion is needed.
		Dev: uint64(st.Dev), //nolint:unconvert // see above
	}, true
}
