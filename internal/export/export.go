// Package export writes a stored artifact out of the store to a local
// path — as a directory tree, a single file, or a zip or tar.gz made by the
// reproducible archiver — or an image as an OCI image layout or a
// docker-archive (image.go), and checks and removes what it wrote.
//
// Guarantees:
//   - Atomic: everything is written into a fresh sibling of the target
//     (".NAME.tmp-<pid>-…", swept once its process has ended) and only then
//     renamed into place, so a reader sees the old content or the whole new
//     content, never half a tree. Replacing content this package wrote
//     before swaps the two in one rename(2) where the system can
//     (renameat2 RENAME_EXCHANGE on Linux), so a served directory never
//     disappears; elsewhere the old content is moved aside first.
//   - Verified: every byte comes from the store through a reader that fails
//     unless it hashes to the digest it was stored under; an archive is
//     checked against the listing it claims; an image's layers, encoded
//     again from their stored trees or read from a base's registry, are
//     checked against the image's descriptors as they stream. A file
//     already present in the old content is reused instead of downloaded
//     only if it hashes right.
//   - Durable before visible: the new content is flushed to disk before the
//     rename (one syncfs(2) on Linux, one fsync per file elsewhere).
//   - Never over what it did not write: a new target must not exist (the
//     rename refuses to replace one that appears meanwhile, on Linux), the
//     final path component is never followed if it is a symlink, and the
//     target may not be inside a content-addressed store or hold one.
//
// The package has no dependency on Terraform.
package export

import (
	"context"
	"fmt"
	"io"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Format is how an artifact is exported: as itself (a directory, a file)
// or as an archive of one of archive's formats.
type Format string

// Formats an artifact can be exported in.
const (
	Directory Format = "directory" // a tree artifact, as files, exec bits and symlinks
	File      Format = "file"      // a file artifact, as one file
	Zip              = Format(archive.Zip)
	TarGz            = Format(archive.TarGz)
)

// Formats lists the formats in the order the docs give them.
var Formats = []Format{Directory, File, Zip, TarGz, OCILayout, DockerArchive}

// FormatNames lists the formats' names, in the order the docs give them.
func FormatNames() []string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return names
}

// Content is a stored artifact: a blob (a file artifact) or a tree with
// its listing.
type Content struct {
	Digest  digest.Sum
	Kind    store.Kind
	Listing *digest.Listing // a tree's listing; nil for a blob
	// Written is the sha256 of the file or archive written, when known:
	// Remove leaves a file that no longer hashes to it (the user's own,
	// put in its place).
	Written *digest.Sum
	// Made identifies the directories a Directory export made (its
	// Writer's Made), when known: Remove leaves one made again since.
	Made *Dirs
	// Image is the image an OCILayout or DockerArchive export writes
	// (LoadImage); Listing is then the export's files and Open reads them.
	Image *Image
	// Open, when set, reads the listing's entries instead of the store,
	// each checked against its digest as it is read.
	Open archive.Opener
}

// opener reads the content's entries: through Open, else from st.
func (c *Content) opener(st *store.Store) archive.Opener {
	if c.Open != nil {
		return c.Open
	}
	return StoreOpener(st)
}

// FormatError is a format the artifact cannot be exported in.
type FormatError struct {
	Format Format
	Kind   store.Kind
}

func (e *FormatError) Error() string {
	if e.Kind == store.Blob {
		return fmt.Sprintf("a file artifact is exported as %q only: its digest names the file's bytes, not a name or mode "+
			"to give it inside a %s. Make the artifact from a directory holding the file to archive it", File, e.Format)
	}
	if e.Format.IsImage() {
		return fmt.Sprintf("a directory artifact is exported as %q, %q or %q; %q and %q export an image, by its manifest "+
			"digest (immutable_image's `digest`)", Directory, Zip, TarGz, OCILayout, DockerArchive)
	}
	return fmt.Sprintf("a directory artifact is exported as %q, %q or %q, not %q", Directory, Zip, TarGz, e.Format)
}

// DefaultFormat is the format used when none is given: a tree as a
// directory, a file as a file.
func DefaultFormat(kind store.Kind) Format {
	if kind == store.Blob {
		return File
	}
	return Directory
}

// Load finds what sum names in the store and reads a tree's listing. An
// artifact not in the store is an error wrapping store.ErrNotFound.
func Load(ctx context.Context, st *store.Store, sum digest.Sum) (*Content, error) {
	kind, err := st.Lookup(ctx, sum)
	if err != nil {
		return nil, err
	}
	c := &Content{Digest: sum, Kind: kind}
	switch kind {
	case store.Missing:
		return nil, fmt.Errorf("%s is not in the store %s: %w", sum, st, store.ErrNotFound)
	case store.Tree:
		if c.Listing, err = st.GetListing(ctx, sum); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// WrittenListing returns the listing of the tree sum that an export wrote
// at target: from the store or, when the store cannot give it, from the
// tree at target if that still hashes to sum as a whole.
func WrittenListing(ctx context.Context, st *store.Store, sum digest.Sum, target string, hashTree TreeHasher) (*digest.Listing, error) {
	m, err := st.GetListing(ctx, sum)
	if err == nil {
		return m, nil
	}
	if onDisk, herr := hashTree(ctx, target); herr == nil && onDisk.Digest() == sum {
		return onDisk, nil
	}
	return nil, fmt.Errorf("the listing of %s, what the export wrote, cannot be read from %s: %w", sum, st, err)
}

// StoreOpener reads a listing's entries back from the store, each checked
// against its digest as it is read.
func StoreOpener(st *store.Store) archive.Opener {
	return func(ctx context.Context, e digest.Entry) (io.ReadCloser, error) {
		return st.OpenBlob(ctx, e.SHA256)
	}
}
