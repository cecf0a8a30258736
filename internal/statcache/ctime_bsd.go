//go:build darwin || freebsd

package statcache

import "syscall"

func ctimeNS(st *syscall.Stat_t) int64 { return int64(st.Ctimespec.Sec)*1e9 + int64(st.Ctimespec.Nsec) }
