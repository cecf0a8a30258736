package actioncache

import "syscall"

// onParentDeath has the kernel kill the command if the provider dies
// (SIGKILL, a crash) while it runs.
func onParentDeath(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
