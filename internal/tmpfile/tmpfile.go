// Package tmpfile makes temporary files that do not outlive a killed
// process for ever: each name carries the creating process's id, and
// Sweep removes those of processes that no longer run. A provider killed
// with SIGKILL in the middle of building a 1 GiB archive otherwise leaves
// it in /tmp until the next reboot.
//
// The package has no dependency on Terraform.
package tmpfile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Create makes a new temporary file in dir ("" = os.TempDir()) named
// prefix + "<pid>-" + random. Sweep(dir, prefix) finds it again.
func Create(dir, prefix string) (*os.File, error) {
	return os.CreateTemp(dir, prefix+strconv.Itoa(os.Getpid())+"-*")
}

// MkdirTemp makes a new temporary directory in dir, named as Create
// names files; Sweep removes it, with what it holds, once its process has
// ended.
func MkdirTemp(dir, prefix string) (string, error) {
	return os.MkdirTemp(dir, prefix+strconv.Itoa(os.Getpid())+"-*")
}

// Sweep removes what Create and MkdirTemp made in dir with prefix whose
// process has ended (a directory with everything in it). It never removes
// what a live process made, nor anything it cannot attribute; failures are
// ignored (a leftover only costs space).
func Sweep(dir, prefix string) { SweepOlder(dir, prefix, 0) }

// SweepOlder is Sweep for entries last modified more than age ago only: a
// directory shared by processes that cannot see each other's ids (two
// containers on one volume) must not lose a live writer's files because
// its id looks dead here.
func SweepOlder(dir, prefix string, age time.Duration) {
	SweepFunc(dir, prefix, age, func(p string) { _ = os.RemoveAll(p) }) // best effort: see Sweep; RemoveAll never follows a symlink
}

// SweepFunc is SweepOlder removing each entry with remove (for directories
// that hold read-only ones).
func SweepFunc(dir, prefix string, age time.Duration, remove func(string)) {
	if dir == "" {
		dir = os.TempDir()
	}
	matches, err := filepath.Glob(filepath.Join(dir, globEscape(prefix)+"*"))
	if err != nil {
		return
	}
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), prefix)
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		if age > 0 {
			if fi, err := os.Lstat(m); err != nil || time.Since(fi.ModTime()) < age {
				continue
			}
		}
		remove(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}
