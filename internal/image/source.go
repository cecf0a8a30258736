package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// StoreSource reads trees and files from a store: listings verified
// against their digest, blobs verified as they stream.
func StoreSource(st *store.Store) Source { return storeSource{st} }

type storeSource struct{ st *store.Store }

func (s storeSource) Listing(ctx context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	kind, err := s.st.Lookup(ctx, sum)
	switch {
	case err != nil:
		return nil, false, err
	case kind == store.Missing:
		return nil, false, fmt.Errorf("%s is neither a tree nor a file in the store %s: %w", sum, s.st, store.ErrNotFound)
	case kind == store.Tree:
		l, err := s.st.GetListing(ctx, sum)
		return l, false, err
	}
	size, err := s.blobSize(ctx, sum)
	if err != nil {
		return nil, false, err
	}
	return fileListing(sum, size), true, nil
}

// blobSize is the stored size of a blob: listed when the backend can
// (one request), else counted by reading it (and checking it) once. It
// is trusted only as far as the tar header: the bytes that follow are
// counted and hashed again.
func (s storeSource) blobSize(ctx context.Context, sum digest.Sum) (int64, error) {
	key := store.BlobKey(sum)
	if d, ok := s.st.Backend().(store.Deleter); ok {
		infos, err := d.ListInfo(ctx, key)
		if err != nil {
			return 0, err
		}
		for _, info := range infos {
			if info.Key == key {
				return info.Size, nil
			}
		}
		return 0, fmt.Errorf("the file %s is not in the store %s: %w", sum, s.st, store.ErrNotFound)
	}
	return s.st.VerifyBlob(ctx, sum)
}

func (s storeSource) Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	return s.st.OpenBlob(ctx, sum)
}

func fileListing(sum digest.Sum, size int64) *digest.Listing {
	return &digest.Listing{Entries: []digest.Entry{{Kind: digest.KindFile, SHA256: sum, Size: size}}}
}

// DirSource reads the tree l (its listing, as digest.HashTree made it)
// from the directory root on disk: a tree planned in this operation and
// not stored yet. Files are opened inside root only (a symlink swapped in
// for a directory cannot lead out of it), never through a symlink put in
// a listed file's place, and their bytes are verified against the listing.
func DirSource(root string, l *digest.Listing) Source {
	return &dirSource{root: root, l: l}
}

type dirSource struct {
	root string
	l    *digest.Listing

	once  sync.Once
	sum   digest.Sum
	bySum map[digest.Sum]int // the first entry of each sha256
}

func (d *dirSource) index() {
	d.once.Do(func() {
		d.sum = d.l.Digest()
		d.bySum = make(map[digest.Sum]int, len(d.l.Entries))
		for i, e := range d.l.Entries {
			if _, ok := d.bySum[e.SHA256]; !ok {
				d.bySum[e.SHA256] = i
			}
		}
	})
}

func (d *dirSource) Listing(_ context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	d.index()
	if sum != d.sum {
		return nil, false, fmt.Errorf("%s is not the tree at %s: %w", sum, d.root, store.ErrNotFound)
	}
	return d.l, false, nil
}

func (d *dirSource) Open(_ context.Context, sum digest.Sum) (io.ReadCloser, error) {
	d.index()
	i, ok := d.bySum[sum]
	if !ok {
		return nil, fmt.Errorf("no file of the tree at %s has the digest %s: %w", d.root, sum, store.ErrNotFound)
	}
	e := d.l.Entries[i]
	root, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }() // a file opened in it stays open
	rel := filepath.FromSlash(e.Path)
	if e.Kind == digest.KindSymlink {
		fi, err := root.Lstat(rel)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return nil, &digest.ChangedError{Path: e.Path, Now: digest.TypeName(fi.Mode())}
		}
		target, err := root.Readlink(rel)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(store.Verified(strings.NewReader(target), e.Path, e.SHA256)), nil
	}
	f, err := openListed(root, rel, e.Path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{store.Verified(f, e.Path, e.SHA256), f}, nil
}

// openListed opens the regular file rel of root for reading: the one
// lstat finds there (not what a symlink in its place points to), without
// blocking on a FIFO put in its place.
func openListed(root *os.Root, rel, name string) (*os.File, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &digest.ChangedError{Path: name, Now: digest.TypeName(fi.Mode())}
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	got, err := f.Stat()
	if err != nil {
		_ = f.Close() // refused before anything was read
		return nil, err
	}
	if !got.Mode().IsRegular() || !os.SameFile(fi, got) {
		_ = f.Close() // refused before anything was read
		return nil, &digest.ChangedError{Path: name, Now: "another file"}
	}
	return f, nil
}

// FileSource reads the single file at path, whose bytes hash to sum and
// are size long (a file artifact planned in this operation): a symlink at
// path itself is followed, as for a source the user named, but what it
// reaches must be a regular file; its bytes are verified.
func FileSource(path string, sum digest.Sum, size int64) Source {
	return fileSource{path: path, sum: sum, size: size}
}

type fileSource struct {
	path string
	sum  digest.Sum
	size int64
}

func (s fileSource) Listing(_ context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	if sum != s.sum {
		return nil, false, fmt.Errorf("%s is not the file %s: %w", sum, s.path, store.ErrNotFound)
	}
	return fileListing(s.sum, s.size), true, nil
}

func (s fileSource) Open(_ context.Context, sum digest.Sum) (io.ReadCloser, error) {
	if sum != s.sum {
		return nil, fmt.Errorf("%s is not the file %s: %w", sum, s.path, store.ErrNotFound)
	}
	f, err := digest.OpenListed(s.path, nil)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{store.Verified(f, s.path, s.sum), f}, nil
}

// MultiSource asks each source in turn, moving to the next only when one
// does not hold a sum (an error wrapping store.ErrNotFound): a tree
// planned now first, then the store.
func MultiSource(srcs ...Source) Source { return multiSource(srcs) }

type multiSource []Source

func (m multiSource) Listing(ctx context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	for _, s := range m {
		l, isFile, err := s.Listing(ctx, sum)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return l, isFile, err
	}
	return nil, false, fmt.Errorf("%s is in none of the sources: %w", sum, store.ErrNotFound)
}

func (m multiSource) Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	for _, s := range m {
		rc, err := s.Open(ctx, sum)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return rc, err
	}
	return nil, fmt.Errorf("the file %s is in none of the sources: %w", sum, store.ErrNotFound)
}
