//go:build unix

package tmpfile

import "syscall"

// alive reports whether a process with this id runs (or might: a process
// of another user answers EPERM).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
