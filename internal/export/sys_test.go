package export

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestPortableRenames runs the fallbacks used where renameat2 is missing.
func TestPortableRenames(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTree(t, a, map[string]string{"new": "new"})
	writeTree(t, b, map[string]string{"old": "old"})
	if err := renameNoReplacePortable(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("renameNoReplacePortable over an existing path = %v", err)
	}
	if err := exchangePortable(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, "new")); err != nil {
		t.Errorf("after the exchange the target lacks the new content: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a, "old", "old")); err != nil {
		t.Errorf("after the exchange the old content is not where the caller removes it: %v", err)
	}
	c := filepath.Join(dir, "c")
	if err := exchangePortable(b, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c, "new")); err != nil {
		t.Errorf("an exchange onto a free path did not rename: %v", err)
	}
}
