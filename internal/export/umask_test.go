//go:build unix

package export

import "syscall"

func fsUmask(m int) int { return syscall.Umask(m) }
