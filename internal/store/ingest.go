package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// PutFile stores one file, a source the user named (a symlink at path is
// followed), and returns its digest and size. See PutListed.
func (s *Store) PutFile(ctx context.Context, path string) (digest.Sum, int64, error) {
	return s.PutListed(ctx, path, nil)
}

// PutListed stores a file a walk listed as info: it is opened without
// following a symlink and must be the file info describes (see
// digest.OpenListed). The file is hashed first; PutBlob then finds the
// blob already stored (nothing more is read or written) or reads the file
// again into the store, verified against the first hash, so a file that
// changes meanwhile fails with a *MismatchError and is not stored.
func (s *Store) PutListed(ctx context.Context, path string, info fs.FileInfo) (digest.Sum, int64, error) {
	f, err := digest.OpenListed(path, info)
	if err != nil {
		return digest.Sum{}, 0, err
	}
	defer func() { _ = f.Close() }() // read-only
	sum, size, err := digest.HashReader(ctx, f)
	if err != nil {
		return sum, size, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sum, size, err
	}
	_, err = s.PutBlob(ctx, sum, f)
	return sum, size, err
}

// PutDir stores a directory: every file's blob, every symlink target's
// blob, then the listing. It returns the manifest of what it stored.
func (s *Store) PutDir(ctx context.Context, root string, opts digest.Options) (*digest.Manifest, error) {
	m, err := digest.Walk(ctx, root, opts, func(ctx context.Context, abs, _ string, info fs.FileInfo) (digest.Sum, int64, error) {
		return s.PutListed(ctx, abs, info)
	})
	if err != nil {
		return nil, err
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		if e.Kind != digest.KindSymlink {
			continue
		}
		target, err := os.Readlink(filepath.Join(resolved, filepath.FromSlash(e.Path)))
		if errors.Is(err, syscall.EINVAL) {
			return nil, &digest.ChangedError{Path: e.Path, Now: "not a symlink"}
		}
		if err != nil {
			return nil, err
		}
		if _, err := s.PutBlob(ctx, e.SHA256, bytes.NewReader([]byte(target))); err != nil {
			return nil, fmt.Errorf("symlink %s: %w", e.Path, err)
		}
	}
	if _, err := s.PutTree(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}
