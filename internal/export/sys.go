package export

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// renameNoReplacePortable checks, then renames: a target appearing in
// between is the only gap, on systems without an atomic no-replace rename.
func renameNoReplacePortable(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	return os.Rename(from, to)
}

// exchangePortable moves what is at to aside, renames from there, and
// moves the old content to from for the caller to remove. Between the two
// renames nothing is at to: the gap the Linux exchange avoids.
func exchangePortable(from, to string) error {
	if _, err := os.Lstat(to); err != nil {
		return renameNoReplacePortable(from, to)
	}
	aside, err := tmpfile.MkdirTemp(filepath.Dir(to), "."+filepath.Base(to)+".tmp-")
	if err != nil {
		return err
	}
	moved := filepath.Join(aside, "old")
	if err := os.Rename(to, moved); err != nil {
		_ = os.Remove(aside)
		return err
	}
	if err := os.Rename(from, to); err != nil {
		_ = os.Rename(moved, to) // put the old content back
		_ = os.Remove(aside)
		return err
	}
	// from is free now: the old content goes there for the caller to remove.
	if err := os.Rename(aside, from); err != nil {
		_ = os.RemoveAll(aside) // swept later if this fails too
	}
	return nil
}

// syncDir makes a rename in dir durable; some systems (Windows) cannot
// open a directory for it, and lose nothing but the rename's durability.
// A variable only so that tests can count.
var syncDir = func(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = f.Sync()
	_ = f.Close() // opened to sync
}

// linkEntry makes to another name of the non-directory from: a hard link
// (the data is shared, never copied), or for a symlink a new symlink with
// the same target (link(2) follows symlinks on some systems).
func linkEntry(from, to string) error {
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(t, to)
	}
	return os.Link(from, to)
}
