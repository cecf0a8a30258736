// Package archive writes byte-reproducible archives of a tree: the same
// listing always gives the same bytes, whatever the umask, mtimes, owner
// or machine. Each format is versioned like the digest spec ("zip-v1"); a
// change to the bytes (a new compressor, say) must come as a new version,
// and TestGoldenArchives pins v1.
//
// The package has no dependency on Terraform.
package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Format is an archive format a user can ask for.
type Format string

// The formats a user can ask for.
const (
	Zip   Format = "zip"
	TarGz Format = "tar.gz"
)

// Formats lists the formats in the order the docs give them.
var Formats = []Format{Zip, TarGz}

// FormatNames lists the formats' names, for a schema's validator.
func FormatNames() []string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return names
}

// Version is the versioned name of a format, used in store keys.
func Version(format Format) string { return string(format) + "-v1" }

// epoch is the modification time of every entry: 1980-01-01, the earliest
// a zip can hold.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Opener returns the content of an entry: a file's bytes, or a symlink's
// target.
type Opener func(ctx context.Context, e digest.Entry) (io.ReadCloser, error)

func mode(e digest.Entry) int64 {
	if e.Kind == digest.KindExec {
		return 0o755
	}
	return 0o644
}

// MaxLinkTarget bounds a symlink's target (PATH_MAX is 4096 on Linux).
const MaxLinkTarget = 1 << 16

// ReadTarget reads a symlink's target through open — exactly the entry's
// size, to the end, so that a verifying opener has checked every byte —
// and refuses one that leaves the tree (see CheckLink).
func ReadTarget(ctx context.Context, open Opener, e digest.Entry, links map[string]bool) (string, error) {
	if e.Size > MaxLinkTarget {
		return "", fmt.Errorf("the symlink %q has a %d-byte target, more than a symlink can hold", e.Path, e.Size)
	}
	rc, err := open(ctx, e)
	if err != nil {
		return "", err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	b, err := io.ReadAll(io.LimitReader(rc, e.Size+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) != e.Size {
		return "", fmt.Errorf("the target of the symlink %q is %d bytes, the listing says %d", e.Path, len(b), e.Size)
	}
	if _, err := rc.Read(make([]byte, 1)); err != io.EOF { // the end, where a verifying reader checks the hash
		if err == nil {
			err = fmt.Errorf("the target of the symlink %q is longer than the listing says", e.Path)
		}
		return "", err
	}
	return string(b), CheckLink(e.Path, string(b), links)
}

// LinkError is a symlink that an archive must not hold: its target is
// absolute or climbs above the archive's root, so whoever unpacks the
// archive would get a link out of the directory they unpacked it into.
type LinkError struct {
	Path, Target string
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("the symlink %q points to %q, outside the tree: an archive holding it would give whoever unpacks it a link "+
		"that leaves their directory. Make the link relative and inside the tree, or leave it out with excludes = [%q]", e.Path, e.Target, e.Path)
}

// CheckLink refuses a symlink target that is absolute (also in Windows
// form) or that, resolved from the link's directory, climbs above the
// root. links holds the paths of the tree's symlinks: once the target
// passes through one of them, where a ".." leads depends on that link's own
// target, not on the text (a -> ".", x -> "a/a/../.." climbs two levels
// above the root), so any ".." after a link is refused. Every link is
// checked itself, so a target that only descends through links stays in.
func CheckLink(p, target string, links map[string]bool) error {
	t := strings.ReplaceAll(target, "\\", "/")
	if t == "" || path.IsAbs(t) || (len(t) >= 2 && t[1] == ':') {
		return &LinkError{Path: p, Target: target}
	}
	var at []string // the path reached so far, from the root
	if d := path.Dir(p); d != "." {
		at = strings.Split(d, "/")
	}
	throughLink := false
	for _, c := range strings.Split(t, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(at) == 0 || throughLink {
				return &LinkError{Path: p, Target: target}
			}
			at = at[:len(at)-1]
		default:
			at = append(at, c)
			throughLink = throughLink || links[strings.Join(at, "/")]
		}
	}
	return nil
}

// UnsafeNameError is an entry whose name an extractor could read as a
// path outside the archive's directory.
type UnsafeNameError struct {
	Path string
}

func (e *UnsafeNameError) Error() string {
	return fmt.Sprintf("the file %q cannot go into an archive safely: Windows extractors read \"\\\" as a separator and \":\" as a "+
		"drive or stream, so it could land outside the directory it is unpacked into. Rename it, or leave it out with excludes = [%q]", e.Path, e.Path)
}

// CheckEntryName refuses an entry name holding "\\" or ":".
func CheckEntryName(p string) error {
	if strings.ContainsAny(p, "\\:") {
		return &UnsafeNameError{Path: p}
	}
	return nil
}

// Links returns the paths of a listing's symlinks, for CheckLink.
func Links(m *digest.Listing) map[string]bool {
	links := map[string]bool{}
	for _, e := range m.Entries {
		if e.Kind == digest.KindSymlink {
			links[e.Path] = true
		}
	}
	return links
}

func copyEntry(ctx context.Context, w io.Writer, open Opener, e digest.Entry) error {
	rc, err := open(ctx, e)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	n, err := digest.Copy(ctx, w, rc)
	if err != nil {
		return err
	}
	if n != e.Size {
		return fmt.Errorf("%s: read %d bytes, the listing says %d", e.Path, n, e.Size)
	}
	return nil
}

// Write writes the archive of m in format to w, in the listing's order.
func Write(ctx context.Context, w io.Writer, format Format, m *digest.Listing, open Opener) error {
	switch format {
	case Zip:
		return writeZip(ctx, w, m, open)
	case TarGz:
		return writeTarGz(ctx, w, m, open)
	}
	return fmt.Errorf("unknown archive format %q", format)
}

func writeZip(ctx context.Context, w io.Writer, m *digest.Listing, open Opener) error {
	links := Links(m)
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, 6)
	})
	for _, e := range m.Entries {
		if err := CheckEntryName(e.Path); err != nil {
			return err
		}
		h := &zip.FileHeader{Name: e.Path, Method: zip.Deflate, Modified: epoch}
		if e.Kind == digest.KindSymlink {
			target, err := ReadTarget(ctx, open, e, links)
			if err != nil {
				return err
			}
			h.Method = zip.Store
			h.SetMode(fs.ModeSymlink | 0o777)
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(fw, target); err != nil {
				return err
			}
			continue
		}
		h.SetMode(fsMode(mode(e)))
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if err := copyEntry(ctx, fw, open, e); err != nil {
			return err
		}
	}
	return zw.Close()
}

func writeTarGz(ctx context.Context, w io.Writer, m *digest.Listing, open Opener) error {
	gz, err := gzip.NewWriterLevel(w, 6)
	if err != nil {
		return err
	}
	links := Links(m)
	tw := tar.NewWriter(gz)
	for _, e := range m.Entries {
		if err := CheckEntryName(e.Path); err != nil {
			return err
		}
		h := &tar.Header{Name: e.Path, ModTime: epoch, Mode: mode(e), Typeflag: tar.TypeReg, Size: e.Size}
		if e.Kind == digest.KindSymlink {
			target, err := ReadTarget(ctx, open, e, links)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, target, 0, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.Kind != digest.KindSymlink {
			if err := copyEntry(ctx, tw, open, e); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func fsMode(perm int64) fs.FileMode { return fs.FileMode(perm) }
