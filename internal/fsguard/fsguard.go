// Package fsguard decides whether the provider may write a path the user
// gave: never into the store, never over the content it is building from,
// never over anything but a regular file. Paths are compared after
// resolving symlinks, so a link to the store's directory is the store.
//
// The package has no dependency on Terraform.
package fsguard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

var errNotDir error = syscall.ENOTDIR

// Resolve returns the real, absolute path p names, as the kernel would
// walk it: component by component, each symlink resolved where it stands,
// and ".." applied to the real directory reached so far — never to the
// text, where "link/.." would wrongly cancel out. The part of p that does
// not exist yet is appended as written (with "." and ".." applied).
func Resolve(p string) (string, error) {
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		p = wd + string(filepath.Separator) + p
	}
	vol := filepath.VolumeName(p)
	cur := vol + string(filepath.Separator)
	exists := true
	for _, c := range strings.Split(filepath.ToSlash(p[len(vol):]), "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur is real: its parent is the real parent
			continue
		}
		next := filepath.Join(cur, c)
		if exists {
			resolved, err := filepath.EvalSymlinks(next)
			switch {
			case err == nil:
				cur = resolved
				continue
			case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotDir):
				exists = false
			default:
				return "", err
			}
		}
		cur = next
	}
	return cur, nil
}

// Rel returns the slash-separated path of p inside root, "." when they are
// the same, or ok false when p is outside root. Both are resolved.
func Rel(p, root string) (rel string, ok bool, err error) {
	rp, err := Resolve(p)
	if err != nil {
		return "", false, err
	}
	rr, err := Resolve(root)
	if err != nil {
		return "", false, err
	}
	r, err := filepath.Rel(rr, rp)
	if err != nil { // on different volumes: not inside
		return "", false, nil //nolint:nilerr // "not inside" is the answer, not a failure
	}
	if r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false, nil
	}
	return filepath.ToSlash(r), true, nil
}

// IsStore tells whether dir (followed if it is a link) is a local
// content-addressed store: it has a blobs/sha256 directory, the layout
// every file:// store has (store.FamilyBlob's folder; spelled here because
// fsguard sits below the store package), and is not an OCI image layout,
// which has one too (flat, where a store's is split by two hex digits)
// and, at its root, the file oci-layout no store has.
func IsStore(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "blobs", "sha256"))
	if err != nil || !fi.IsDir() {
		return false
	}
	fi, err = os.Lstat(filepath.Join(dir, "oci-layout"))
	return err != nil || !fi.Mode().IsRegular()
}

// StoreAbove finds a local content-addressed store holding path: the
// nearest real directory above it (or it) with a blobs/sha256 directory,
// the layout every file:// store has. Every store is recognised this way,
// not only the one a resource is configured with: another provider block's
// store is just as write-once.
func StoreAbove(path string) (string, bool) {
	p, err := Resolve(path)
	if err != nil {
		return "", false
	}
	for dir := p; ; dir = filepath.Dir(dir) {
		if IsStore(dir) {
			return dir, true
		}
		if filepath.Dir(dir) == dir {
			return "", false
		}
	}
}

// Area is a place a target must stay out of.
type Area struct {
	Root string // a directory or a file
	What string // for messages: "the store file:///x", "the source directory"
	// Allow, when set, lets a target strictly inside Root through when it
	// returns true for its slash-separated path relative to Root (a path
	// the source's excludes leave out, say).
	Allow func(rel string) bool
}

// RefusedError is a target the provider will not write.
type RefusedError struct {
	Target string
	Reason string
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%s %s", e.Target, e.Reason) }

// CheckEntryName refuses a path whose last component names no new entry
// of a directory: one that is empty or ends in "/", "." or "..".
func CheckEntryName(p string) error {
	slashed := filepath.ToSlash(p)
	if last := slashed[strings.LastIndex(slashed, "/")+1:]; last == "" || last == "." || last == ".." {
		return &RefusedError{Target: p, Reason: "names a directory (it is empty or ends in \"/\", \".\" or \"..\"); give the path of a new entry, such as \"build/lambda.zip\""}
	}
	return nil
}

// CheckParents refuses target (resolved: its real absolute path) when the
// deepest part of its parents that exists is not a directory: under a
// regular file nothing can ever be created.
func CheckParents(target, resolved string) error {
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return &RefusedError{Target: target, Reason: fmt.Sprintf("cannot be created: %s is a file, not a directory", dir)}
			}
			return nil
		}
		if filepath.Dir(dir) == dir {
			return nil
		}
	}
}

// CheckTarget refuses a target that is inside (or is) one of the areas, or
// that exists and is not a regular file (a directory, a named pipe, a
// device, a socket, a symlink): the provider only ever replaces a regular
// file there, atomically.
func CheckTarget(target string, areas ...Area) error {
	if err := CheckEntryName(target); err != nil {
		return err
	}
	if p, err := Resolve(target); err == nil {
		if err := CheckParents(target, p); err != nil {
			return err
		}
	}
	for _, a := range areas {
		rel, in, err := Rel(target, a.Root)
		if err != nil {
			return err
		}
		if !in || (rel != "." && a.Allow != nil && a.Allow(rel)) {
			continue
		}
		if rel == "." {
			return &RefusedError{Target: target, Reason: "is " + a.What}
		}
		return &RefusedError{Target: target, Reason: "is inside " + a.What}
	}
	if root, ok := StoreAbove(target); ok {
		return &RefusedError{Target: target, Reason: "is inside the content-addressed store " + root + ", whose objects are never overwritten"}
	}
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotDir):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return &RefusedError{Target: target, Reason: "exists and is " + digest.TypeName(fi.Mode().Type())}
	}
	return nil
}
