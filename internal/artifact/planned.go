package artifact

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// plannedTree is content this operation hashed from disk: where it lives,
// so what is planned from it before it is stored (an image layer of an
// artifact created in the same apply) can read it there.
type plannedTree struct {
	root string          // the source: a directory, or the file itself
	tree *digest.Listing // nil for a file
	size int64
}

// plannedFile is one file (or symlink) of planned content.
type plannedFile struct {
	path    string
	inline  []byte // inline content (content, content_base64): held, not on disk
	symlink bool
	follow  bool // a file source itself, which hashing followed
}

// remember notes where the content c hashed from src lives on disk.
func (s *Sources) remember(src Source, c *Content) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.planned == nil {
		s.planned, s.plannedFiles = map[digest.Sum]plannedTree{}, map[digest.Sum]plannedFile{}
	}
	if _, ok := s.planned[c.Sum]; ok {
		return
	}
	s.planned[c.Sum] = plannedTree{root: src.Path, tree: c.Tree, size: c.Size}
	if c.Tree == nil {
		s.plannedFiles[c.Sum] = plannedFile{path: src.Path, follow: true}
		return
	}
	for _, e := range c.Tree.Entries {
		if _, ok := s.plannedFiles[e.SHA256]; !ok {
			s.plannedFiles[e.SHA256] = plannedFile{path: filepath.Join(src.Path, filepath.FromSlash(e.Path)), symlink: e.Kind == digest.KindSymlink}
		}
	}
}

// RememberInline notes inline content hashed in this operation (an
// artifact's content or content_base64), so what is planned from it
// before it is stored can read it. It is held in memory: inline content
// comes from the configuration, which holds it already.
func (s *Sources) RememberInline(b []byte) *Content {
	c := Inline(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.planned == nil {
		s.planned, s.plannedFiles = map[digest.Sum]plannedTree{}, map[digest.Sum]plannedFile{}
	}
	if _, ok := s.planned[c.Sum]; !ok {
		s.planned[c.Sum] = plannedTree{size: c.Size}
		s.plannedFiles[c.Sum] = plannedFile{inline: append([]byte{}, b...)} // never nil: "" is content too
	}
	return c
}

// NotPlannedError is content this operation did not hash from disk.
type NotPlannedError struct{ Sum digest.Sum }

func (e *NotPlannedError) Error() string {
	return fmt.Sprintf("%s was not hashed from a source in this operation", e.Sum)
}

// Is makes a NotPlannedError a store.ErrNotFound (and an fs.ErrNotExist):
// a reader of several sources moves on to the next.
func (e *NotPlannedError) Is(target error) bool {
	return target == store.ErrNotFound || target == fs.ErrNotExist
}

// PlannedListing returns the listing of the tree sum hashed from a source
// in this operation, or for a file source (isFile) a one-entry listing of
// its digest and size, or a *NotPlannedError.
func (s *Sources) PlannedListing(_ context.Context, sum digest.Sum) (l *digest.Listing, isFile bool, err error) {
	s.mu.Lock()
	p, ok := s.planned[sum]
	s.mu.Unlock()
	if !ok {
		return nil, false, &NotPlannedError{Sum: sum}
	}
	if p.tree == nil {
		return &digest.Listing{Entries: []digest.Entry{{Kind: digest.KindFile, SHA256: sum, Size: p.size}}}, true, nil
	}
	return p.tree, false, nil
}

// OpenPlanned opens the bytes of a file (or a symlink's target) of
// content hashed from a source in this operation, read again from disk
// without following a symlink and verified against sum as they are read
// (a *store.MismatchError at the end when the file changed since), or
// returns a *NotPlannedError.
func (s *Sources) OpenPlanned(_ context.Context, sum digest.Sum) (io.ReadCloser, error) {
	s.mu.Lock()
	f, ok := s.plannedFiles[sum]
	s.mu.Unlock()
	if !ok {
		return nil, &NotPlannedError{Sum: sum}
	}
	if f.inline != nil {
		return io.NopCloser(bytes.NewReader(f.inline)), nil
	}
	if f.symlink {
		target, err := os.Readlink(f.path)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(store.Verified(bytes.NewReader([]byte(target)), f.path, sum)), nil
	}
	fh, err := openPlanned(f)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{store.Verified(fh, f.path, sum), fh}, nil
}

// openPlanned opens a planned file; one inside a tree only if it is still
// a regular file, not a symlink put in its place (the bytes are verified
// anyway: this keeps a link from making the provider read elsewhere).
func openPlanned(f plannedFile) (*os.File, error) {
	if f.follow {
		return os.Open(f.path)
	}
	before, err := os.Lstat(f.path)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is no longer a regular file", f.path)
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	after, err := fh.Stat()
	if err != nil || !os.SameFile(before, after) {
		_ = fh.Close() // read-only, never read: nothing to lose
		return nil, fmt.Errorf("%s changed while it was opened", f.path)
	}
	return fh, nil
}
