//go:build unix

package actioncache

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
)

// linkedTools: PATH is a directory of links to the declared tools only.
const linkedTools = true

// toolPath makes base/tools hold a link per declared tool and returns it
// as the build's PATH: only declared programs are found by name.
func toolPath(base string, tools map[string]Tool) (string, error) {
	dir := filepath.Join(base, "tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	for name, t := range tools {
		if err := os.Symlink(t.Path, filepath.Join(dir, name)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// setGroup starts the command in a process group of its own, which a
// timeout or a cancel kills whole, and (on Linux) kills it if the
// provider dies first.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	onParentDeath(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// startAndWait starts cmd, calls started, and waits for it, on one locked
// OS thread: Linux sends the parent-death signal when the thread that
// started the child ends, not the process.
func startAndWait(cmd *exec.Cmd, started func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Start()
	started()
	if err != nil {
		return err
	}
	return cmd.Wait()
}

// killGroup kills whatever the command left running in its group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH when nothing is left: fine
	}
}
