//go:build !unix

package actioncache

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// linkedTools: off Unix, PATH is the directories of the declared tools
// (links need privileges on Windows), so other programs there are found too.
const linkedTools = false

func toolPath(base string, tools map[string]Tool) (string, error) {
	seen := map[string]bool{}
	var dirs []string
	for _, t := range tools {
		d := filepath.Dir(t.Path)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return strings.Join(dirs, string(os.PathListSeparator)), nil
}

func setGroup(*exec.Cmd) {}

func startAndWait(cmd *exec.Cmd, started func()) error {
	err := cmd.Start()
	started()
	if err != nil {
		return err
	}
	return cmd.Wait()
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
