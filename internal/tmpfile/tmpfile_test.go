package tmpfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweep: a file left by a process that has ended is removed; the
// files of this (live) process and files of other names are kept.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid // it has exited and been reaped
	left := filepath.Join(dir, "immutable-archive-"+strconv.Itoa(dead)+"-123")
	if err := os.WriteFile(left, []byte("half an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	mine, err := Create(dir, "immutable-archive-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mine.Close() }() // test scratch
	other := filepath.Join(dir, "immutable-archive-notapid")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	Sweep(dir, "immutable-archive-")
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the dead process's file is still there: %v", err)
	}
	for _, keep := range []string{mine.Name(), other} {
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("%s was removed: %v", keep, err)
		}
	}
}
