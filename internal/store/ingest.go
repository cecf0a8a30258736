package store

import (
	"context"
	"io"
	"io/fs"

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

// PutDir stores a directory: it is hashed, then published (Publish:
// every blob, verified as read, then the listing). It returns the
// listing of what it stored.
func (s *Store) PutDir(ctx context.Context, root string, opts digest.Options) (*digest.Listing, error) {
	m, err := digest.HashTree(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	if _, err := s.Publish(ctx, root, m); err != nil {
		return nil, err
	}
	return m, nil
}
