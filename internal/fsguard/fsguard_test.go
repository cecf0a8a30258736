package fsguard

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// must fails the test on a setup step's error: a step that did not happen
// would make the assertion after it meaningless.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckTarget: what the provider must refuse to write, and what it
// may.
func TestCheckTarget(t *testing.T) {
	root := t.TempDir()
	st := filepath.Join(root, "store")
	src := filepath.Join(root, "src")
	for _, d := range []string{filepath.Join(st, "blobs", "sha256", "ab"), filepath.Join(src, "build")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	blob := filepath.Join(st, "blobs", "sha256", "ab", "abcd")
	must(t, os.WriteFile(blob, []byte("stored"), 0o444))
	file := filepath.Join(root, "a.txt")
	must(t, os.WriteFile(file, []byte("a"), 0o644))
	must(t, os.Symlink(st, filepath.Join(root, "link-to-store")))
	// link-to-blobs/.. is the store's blobs/ directory for the kernel,
	// though the text "link-to-blobs/.." cancels out to root.
	must(t, os.Symlink(filepath.Join(st, "blobs", "sha256"), filepath.Join(root, "link-to-blobs")))
	must(t, os.Symlink(file, filepath.Join(root, "link-to-file")))
	fifo := filepath.Join(root, "pipe")
	must(t, syscall.Mkfifo(fifo, 0o644))
	sock := filepath.Join(root, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // only there to be a socket; nothing is sent
	regular := filepath.Join(root, "old.zip")
	must(t, os.WriteFile(regular, []byte("old"), 0o644))

	storeArea := Area{Root: st, What: "the store"}
	dirArea := Area{Root: src, What: "the source directory", Allow: func(rel string) bool { return strings.HasPrefix(rel, "build/") }}
	fileArea := Area{Root: file, What: "the source file"}
	for _, c := range []struct {
		name, target string
		want         string // "" = allowed
	}{
		{"a blob in the store", blob, "is inside the store"},
		{"the store itself", st, "is the store"},
		{"through a link and ..", root + "/link-to-blobs/../sha256/ab/abcd", "is inside the store"},
		{"through a symlinked parent", filepath.Join(root, "link-to-store", "blobs", "sha256", "ab", "abcd"), "is inside the store"},
		{"a new file in the store", filepath.Join(st, "new", "x.zip"), "is inside the store"},
		{"the source file", file, "is the source file"},
		{"a symlink to the source file", filepath.Join(root, "link-to-file"), "is the source file"},
		{"inside the source directory", filepath.Join(src, "out.zip"), "is inside the source directory"},
		{"excluded part of the source", filepath.Join(src, "build", "out.zip"), ""},
		{"a named pipe", fifo, "exists and is a named pipe"},
		{"a socket", sock, "exists and is a socket"},
		{"a character device", "/dev/null", "exists and is a character device"},
		{"a directory", filepath.Join(root, "store", "blobs"), "is inside the store"},
		{"another directory", root, "exists and is a directory"},
		{"a regular file", regular, ""},
		{"under a regular file", filepath.Join(regular, "x.zip"), "cannot be created: " + regular + " is a file"},
		{"a trailing slash", filepath.Join(root, "newdir") + "/", "names a directory"},
		{"a trailing dot", filepath.Join(root, "x.zip") + "/.", "names a directory"},
		{"a new path", filepath.Join(root, "new", "deeper", "x.zip"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckTarget(c.target, storeArea, dirArea, fileArea)
			var re *RefusedError
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (!errors.As(err, &re) || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want %q, got %v", c.want, err)
			}
		})
	}
	// A symlink at the target is refused even when it points somewhere harmless.
	must(t, os.Symlink(regular, filepath.Join(root, "link.zip")))
	if err := CheckTarget(filepath.Join(root, "link.zip")); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a symlink target: %v", err)
	}
}

// TestOtherStoresAreRecognised: a path inside any local store (found by
// its blobs/sha256 layout) is refused, though no Area names it.
func TestOtherStoresAreRecognised(t *testing.T) {
	other := filepath.Join(t.TempDir(), "storeA")
	must(t, os.MkdirAll(filepath.Join(other, "blobs", "sha256", "87"), 0o755))
	blob := filepath.Join(other, "blobs", "sha256", "87", "8742")
	must(t, os.WriteFile(blob, []byte("stored"), 0o444))
	for _, target := range []string{blob, filepath.Join(other, "trees", "new.zip"), filepath.Join(other, "x.zip")} {
		if err := CheckTarget(target); err == nil || !strings.Contains(err.Error(), "inside the content-addressed store") {
			t.Errorf("CheckTarget(%s) = %v", target, err)
		}
	}
	if err := CheckTarget(filepath.Join(t.TempDir(), "x.zip")); err != nil {
		t.Fatal(err)
	}
}

// An OCI image layout (immutable_export's oci-layout) has blobs/sha256
// too, and its oci-layout file: it is not a store.
func TestImageLayoutIsNoStore(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	must(t, os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755))
	if !IsStore(layout) {
		t.Fatal("blobs/sha256 alone is a store")
	}
	must(t, os.Mkdir(filepath.Join(layout, "oci-layout"), 0o755))
	if !IsStore(layout) {
		t.Error("a directory named oci-layout made it no store")
	}
	must(t, os.Remove(filepath.Join(layout, "oci-layout")))
	must(t, os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	if IsStore(layout) {
		t.Error("an OCI image layout is taken for a store")
	}
	if err := CheckTarget(filepath.Join(layout, "blobs", "x.zip")); err != nil {
		t.Errorf("a target inside an OCI image layout: %v", err)
	}
}
