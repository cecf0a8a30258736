// Package filestore is the store backend on the local filesystem
// (file:// URLs): one machine, any number of processes.
//
// Every object is written to a temporary file in its final directory,
// fsynced, made read-only, then hard-linked to its key — link(2) fails if
// the key exists, so an object is never overwritten, and a crash at any
// point leaves either no object or the whole one — and the directory is
// fsynced. Temporary files start with ".tmp-<pid>-" and are never listed;
// those a killed writer left are removed by the next process that writes
// in their directory.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

const tmpPrefix = ".tmp-"

// Backend is a store.Backend in a directory.
type Backend struct {
	root  string
	swept sync.Map // directories whose leftovers this process removed
}

var _ store.Backend = (*Backend)(nil)

// New returns a backend rooted at dir. Nothing is created until the first
// write, so that plans never write.
func New(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Backend{root: abs}, nil
}

// Locate implements store.Locator: the object's absolute path.
func (b *Backend) Locate(key string) (store.Location, error) {
	p, err := b.path(key)
	return store.Location{Path: p}, err
}

// Root is the store's directory.
func (b *Backend) Root() string { return b.root }

func (b *Backend) String() string { return "file://" + b.root }

func (b *Backend) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid store key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tmpPrefix) {
			return "", fmt.Errorf("invalid store key %q", key)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// WriteError is a failure to write into the store's directory.
type WriteError struct {
	Store string
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("cannot write to the store %s: %v. Check the provider's `store` setting (or IMMUTABLE_STORE): "+
		"the directory must be writable by the user running Terraform", e.Store, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// BackendError marks it as a store.BackendError.
func (e *WriteError) BackendError() {}

// Create implements store.Backend.
func (b *Backend) Create(ctx context.Context, key string, r io.Reader) (err error) {
	final, err := b.path(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		return store.ErrExists
	}
	dir := filepath.Dir(final)
	if err := b.mkdirAll(dir); err != nil {
		return &WriteError{Store: b.String(), Err: err}
	}
	if _, done := b.swept.LoadOrStore(dir, true); !done {
		// Temporary files of a writer killed mid-write are never listed,
		// but take space: remove those of processes that have ended, once
		// per directory per process.
		tmpfile.Sweep(dir, tmpPrefix)
	}
	tmp, err := tmpfile.Create(dir, tmpPrefix)
	if err != nil {
		return &WriteError{Store: b.String(), Err: err}
	}
	name := tmp.Name()
	// The temporary name goes away whether or not the link is made; a crash
	// before this runs leaves only an unlisted .tmp- file.
	defer func() { _ = os.Remove(name) }() // fails once linked and removed: nothing to report
	if err := writeTemp(ctx, tmp, r); err != nil {
		return err
	}
	if err := os.Link(name, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return store.ErrExists
		}
		return &WriteError{Store: b.String(), Err: err}
	}
	return syncDir(dir)
}

// writeTemp fills, seals and closes a temporary file.
func writeTemp(ctx context.Context, tmp *os.File, r io.Reader) error {
	defer func() { _ = tmp.Close() }() // closed below on success; an early return only abandons it
	if _, err := digest.Copy(ctx, tmp, r); err != nil {
		return err
	}
	if err := tmp.Chmod(0o444); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	return tmp.Close()
}

// mkdirAll creates dir and its missing parents, fsyncing each parent whose
// listing changed so the new directories survive a crash. The store's root,
// if it creates it, is readable by its owner only (0700): blobs hold
// whatever the sources held, secrets included, and are 0444 themselves.
// Directories above the root are 0755; one that exists keeps its mode.
func (b *Backend) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := b.mkdirAll(parent); err != nil {
			return err
		}
	}
	mode := os.FileMode(0o755)
	if dir == b.root {
		mode = 0o700
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // a directory opened only to fsync it
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

var errNotDir = syscall.ENOTDIR

// Open implements store.Backend.
func (b *Backend) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return f, err
}

// Exists implements store.Backend.
func (b *Backend) Exists(_ context.Context, key string) (bool, error) {
	p, err := b.path(key)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// List implements store.Backend.
func (b *Backend) List(_ context.Context, prefix string) ([]string, error) {
	// Walk only the deepest directory the prefix names.
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	start := filepath.Join(b.root, filepath.FromSlash(dirKey))
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A missing prefix, or one under a regular file, lists nothing,
			// as Open finds nothing there.
			if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)) && p == start {
				return fs.SkipAll
			}
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		if k := filepath.ToSlash(rel); strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}
