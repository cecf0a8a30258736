//go:build unix && !linux

package actioncache

import "syscall"

// onParentDeath: only Linux has a parent-death signal; elsewhere a build
// outlives a killed provider (its directory is swept by the next build).
func onParentDeath(*syscall.SysProcAttr) {}
