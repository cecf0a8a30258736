package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// sourceOpener reads archive entries from the source just stored, not back
// from the store (for S3 that would download everything just uploaded).
// Each entry is verified against the listing as it is read, so the
// archive holds exactly the stored content or its build fails (that is the
// guarantee); a file of a tree is also opened without following a symlink
// put in its place, so nothing outside the tree is even read.
func sourceOpener(src string, isDir bool) archive.Opener {
	return func(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
		p := src
		if isDir {
			p = filepath.Join(src, filepath.FromSlash(e.Path))
		}
		if e.Kind == digest.KindSymlink {
			target, err := os.Readlink(p)
			if errors.Is(err, syscall.EINVAL) {
				return nil, &digest.ChangedError{Path: e.Path, Now: "not a symlink"}
			}
			if err != nil {
				return nil, err
			}
			return io.NopCloser(store.Verified(strings.NewReader(target), e.Path, e.SHA256)), nil
		}
		var info os.FileInfo
		if isDir {
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, err
			}
			info = fi
		}
		f, err := digest.OpenListed(p, info)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{store.Verified(f, e.Path, e.SHA256), f}, nil
	}
}

// CheckArchive refuses, at plan, content of the source at src that an
// archive cannot hold: a file whose name the digest spec cannot encode
// (an *ArchiveNameError), a tree holding a name unsafe in an archive or a
// symlink that leaves it (see CheckLinks).
func CheckArchive(src string, c *Content) error {
	if c.Tree != nil {
		return CheckLinks(src, c.Tree)
	}
	if c.Listing == nil {
		return &ArchiveNameError{Path: src}
	}
	if err := digest.CheckName(c.Listing.Entries[0].Path); err != nil {
		return &ArchiveNameError{Path: src, Err: err}
	}
	return nil
}

// CheckLinks refuses a tree rooted at src holding a name that is unsafe
// in an archive (an *archive.UnsafeNameError) or a symlink that leaves the
// tree (an *archive.LinkError): an archive of it, or the tree placed in a
// build's working directory, could reach outside. The targets are read
// from disk: listings keep only their hash.
func CheckLinks(src string, m *digest.Listing) error {
	links := archive.Links(m)
	for _, e := range m.Entries {
		if err := archive.CheckEntryName(e.Path); err != nil {
			return err
		}
		if e.Kind != digest.KindSymlink {
			continue
		}
		target, err := os.Readlink(filepath.Join(src, filepath.FromSlash(e.Path)))
		if err != nil {
			return err
		}
		if err := archive.CheckLink(e.Path, target, links); err != nil {
			return err
		}
	}
	return nil
}

// OutputGuard is the check of an output path: refused (an
// *fsguard.RefusedError) inside the store, the source itself or inside a
// directory source (unless its excludes leave it out, so it cannot change
// the digest), or an existing path that is not a regular file. It is run
// at plan, before anything is stored at apply, and by WriteArchive on the
// resolved target just before the rename.
func (s *Sources) OutputGuard(src string, srcIsDir bool, excludes []string) func(target string) error {
	var areas []fsguard.Area
	if root := s.st.LocalRoot(); root != "" {
		areas = append(areas, fsguard.Area{Root: root, What: "the store " + s.st.String()})
	}
	if src != "" {
		a := fsguard.Area{Root: src, What: fmt.Sprintf("the source %q", src)}
		if srcIsDir {
			a.What = fmt.Sprintf("the source directory %q", src)
			a.Allow = func(rel string) bool { return digest.Excluded(rel, excludes) }
		}
		areas = append(areas, a)
	}
	return func(target string) error { return fsguard.CheckTarget(target, areas...) }
}

// StoreArchive finds the archive of c in format, or builds it from the
// source at src (read again, each entry verified against c's listing), and
// returns its sha256. A stored archive is checked against the listing,
// unless writing (WriteArchive checks it in the same single read) and it
// is the planned one. A file's one-entry listing is stored too, for
// verify_on_refresh. planned, when known, is the archive the plan
// expects: another is an *ArchiveChangedError.
func (s *Sources) StoreArchive(ctx context.Context, format archive.Format, src string, c *Content, planned *digest.Sum, writing bool) (digest.Sum, error) {
	listing := c.Listing
	sum, err := s.refs.Find(ctx, format, listing)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sum, err = s.refs.Build(ctx, format, listing, sourceOpener(src, c.Tree != nil))
	case err == nil && (!writing || (planned != nil && *planned != sum)):
		// Unless it is not what the plan expects: then checking it first
		// says whether the reference is damaged.
		err = s.refs.Check(ctx, format, listing, sum)
	}
	if err == nil && c.Tree == nil {
		// An archive recorded by an older build may lack it; a tree is
		// stored already.
		_, err = s.st.PutListing(ctx, listing)
	}
	if err != nil {
		return sum, fmt.Errorf("building the %s archive in %s: %w", format, s.st, err)
	}
	if planned != nil && *planned != sum {
		return sum, &ArchiveChangedError{Planned: *planned, Stored: sum}
	}
	return sum, nil
}

// WriteArchive writes a copy of c's archive in format, sum, to out,
// atomically and only where guard allows (checked again on the resolved
// target just before the rename), checking the archive against the
// listing as it is copied.
func (s *Sources) WriteArchive(ctx context.Context, format archive.Format, c *Content, sum digest.Sum, out string, guard func(string) error) error {
	return s.refs.WriteFile(ctx, format, c.Listing, sum, out, guard)
}

// EnsureArchive finds the archive of listing in format, or builds it from
// the content already in the store (each entry read back and checked
// against its digest: a build's output, say), and returns its sha256. A
// stored archive is verified first. For a file's one-entry listing
// (isFile) the listing is stored too, as StoreArchive stores it.
// planned, when known, is the archive the plan expects: another is an
// *ArchiveChangedError.
func (s *Sources) EnsureArchive(ctx context.Context, format archive.Format, listing *digest.Listing, isFile bool, planned *digest.Sum) (digest.Sum, error) {
	sum, err := s.refs.Ensure(ctx, format, listing, export.StoreOpener(s.st)) // a stored one is verified first
	if err == nil && isFile {
		_, err = s.st.PutListing(ctx, listing)
	}
	if err != nil {
		return sum, err
	}
	if planned != nil && *planned != sum {
		return sum, &ArchiveChangedError{Planned: *planned, Stored: sum}
	}
	return sum, nil
}
