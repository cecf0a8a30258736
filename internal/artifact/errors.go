package artifact

import (
	"fmt"
	"io/fs"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// SourceError is a source that cannot be read at all: missing, under a
// file, not readable. Err is the stat's error.
type SourceError struct {
	Path string
	Err  error
}

func (e *SourceError) Error() string { return fmt.Sprintf("%q: %v", e.Path, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// ContentError is a failure while hashing or storing the content of a
// source: an unsupported name or file type, a file changed while read, the
// store failing. Err says which.
type ContentError struct {
	Path string
	Err  error
}

func (e *ContentError) Error() string { return fmt.Sprintf("in %q: %v", e.Path, e.Err) }
func (e *ContentError) Unwrap() error { return e.Err }

// ExcludeError is an exclude glob that can never be used.
type ExcludeError struct {
	Index int // in Source.Excludes
	Glob  string
	Err   error
}

func (e *ExcludeError) Error() string {
	return fmt.Sprintf("invalid exclude glob %q: %v", e.Glob, e.Err)
}
func (e *ExcludeError) Unwrap() error { return e.Err }

// ExcludesOnFileError is a file source given excludes.
type ExcludesOnFileError struct{ Path string }

func (e *ExcludesOnFileError) Error() string {
	return fmt.Sprintf("%q is a file; excludes only apply to a directory", e.Path)
}

// NotRegularError is a source that is neither a regular file nor a
// directory (a named pipe, a device, a socket).
type NotRegularError struct {
	Path string
	Type fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%q is %s, not a regular file or a directory", e.Path, digest.TypeName(e.Type))
}

// StoreInsideSourceError is a directory source holding the local store:
// every apply would add to the content it hashes. Rel is the store's path
// inside the source, slash-separated.
type StoreInsideSourceError struct {
	Store  string
	Source string
	Rel    string
}

func (e *StoreInsideSourceError) Error() string {
	return fmt.Sprintf("the store %s is inside the source directory %q (at %q)", e.Store, e.Source, e.Rel)
}

// TooLargeError is a directory whose listing the store could not give
// back (store.MaxListing).
type TooLargeError struct {
	Path string
	Err  *store.ListingTooLargeError
}

func (e *TooLargeError) Error() string { return fmt.Sprintf("in %q: %v", e.Path, e.Err) }
func (e *TooLargeError) Unwrap() error { return e.Err }

// ChangedError is a source whose content is no longer the one planned:
// nothing was recorded for it.
type ChangedError struct {
	Path    string
	Planned digest.Sum
	Now     digest.Sum
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%q hashes to %s now, not %s as planned: it changed since", e.Path, e.Now, e.Planned)
}

// ArchiveNameError is a file source whose name an archive entry cannot
// have: the digest spec cannot encode it.
type ArchiveNameError struct {
	Path string
	Err  error
}

func (e *ArchiveNameError) Error() string {
	return fmt.Sprintf("archive needs a source whose name the digest spec can encode; %q is not valid UTF-8 or holds a newline", e.Path)
}
func (e *ArchiveNameError) Unwrap() error { return e.Err }

// ArchiveChangedError is a stored archive other than the planned one.
type ArchiveChangedError struct {
	Planned digest.Sum
	Stored  digest.Sum
}

func (e *ArchiveChangedError) Error() string {
	return fmt.Sprintf("the plan expected archive sha256 %s, the store holds %s", e.Planned.Hex(), e.Stored.Hex())
}
