package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// ContentError is an archive that does not hold the listing it is
// recorded for: another tree's archive put in its place, say.
type ContentError struct {
	Entry  string // the listing's path at the first difference, or ""
	Reason string
}

func (e *ContentError) Error() string {
	if e.Entry == "" {
		return "the archive does not hold the listing it is recorded for: " + e.Reason
	}
	return fmt.Sprintf("the archive does not hold the listing it is recorded for: at %q, %s", e.Entry, e.Reason)
}

// Verify checks that the archive in r (size bytes, in format, whose
// sha256 is want) is exactly the archive of m: first each entry in order
// against the listing — its name, kind (regular, executable or symlink)
// and the sha256 and size of its content or link target — then, since
// archives are byte-reproducible, by building the archive of m again from
// the entries just checked and comparing its sha256 with want. The second
// step rejects anything a reader other than ours might see differently:
// bytes before or after the archive, zip local headers that disagree with
// the central directory, extra tar headers.
func Verify(ctx context.Context, format Format, r io.ReaderAt, size int64, m *digest.Listing, want digest.Sum) error {
	var open Opener
	switch format {
	case Zip:
		zr, err := verifyZip(ctx, r, size, m)
		if err != nil {
			return err
		}
		byName := make(map[string]*zip.File, len(zr.File))
		for _, f := range zr.File {
			byName[f.Name] = f
		}
		open = func(_ context.Context, e digest.Entry) (io.ReadCloser, error) { return byName[e.Path].Open() }
	case TarGz:
		if err := verifyTarGz(ctx, io.NewSectionReader(r, 0, size), m); err != nil {
			return err
		}
		// Write asks for the entries in the listing's order, the archive's:
		// a second pass serves them one after the other.
		gz, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
		if err != nil {
			return &ContentError{Reason: err.Error()}
		}
		tr := tar.NewReader(gz)
		open = func(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
			h, err := tr.Next()
			if err != nil {
				return nil, err
			}
			if h.Typeflag == tar.TypeSymlink {
				return io.NopCloser(strings.NewReader(h.Linkname)), nil
			}
			return io.NopCloser(tr), nil
		}
	default:
		return fmt.Errorf("unknown archive format %q", format)
	}
	h := sha256.New()
	if err := Write(ctx, h, format, m, open); err != nil {
		return &ContentError{Reason: "rebuilding it from its entries: " + err.Error()}
	}
	var got digest.Sum
	h.Sum(got[:0])
	if got != want {
		return &ContentError{Reason: fmt.Sprintf("its entries match, but its bytes (%s) are not the reproducible %s archive of the listing (%s): "+
			"something was added around or inside it that an extractor may read", want, format, got)}
	}
	return nil
}

// checkEntry compares one archive entry with the listing's.
func checkEntry(ctx context.Context, e digest.Entry, name string, kind digest.Kind, n int64, content io.Reader) error {
	if name != e.Path {
		return &ContentError{Entry: e.Path, Reason: fmt.Sprintf("the archive has %q", name)}
	}
	if kind != e.Kind {
		return &ContentError{Entry: e.Path, Reason: fmt.Sprintf("the archive has a %s, the listing a %s", kind, e.Kind)}
	}
	if n != e.Size {
		return &ContentError{Entry: e.Path, Reason: fmt.Sprintf("the archive has %d bytes, the listing %d", n, e.Size)}
	}
	h := sha256.New()
	got, err := digest.Copy(ctx, h, io.LimitReader(content, e.Size+1))
	if err != nil {
		return err
	}
	var sum digest.Sum
	h.Sum(sum[:0])
	if got != e.Size || sum != e.SHA256 {
		return &ContentError{Entry: e.Path, Reason: fmt.Sprintf("the archive's content hashes to %s, the listing says %s", sum, e.SHA256)}
	}
	return nil
}

func zipKind(f *zip.File) (digest.Kind, error) {
	m := f.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return digest.KindSymlink, nil
	case m.IsRegular() && m.Perm() == 0o755:
		return digest.KindExec, nil
	case m.IsRegular() && m.Perm() == 0o644:
		return digest.KindFile, nil
	}
	return "", &ContentError{Entry: f.Name, Reason: fmt.Sprintf("unexpected mode %v", m)}
}

func verifyZip(ctx context.Context, r io.ReaderAt, size int64, m *digest.Listing) (*zip.Reader, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, &ContentError{Reason: "not a readable zip: " + err.Error()}
	}
	if len(zr.File) != len(m.Entries) {
		return nil, &ContentError{Reason: fmt.Sprintf("it has %d entries, the listing %d", len(zr.File), len(m.Entries))}
	}
	for i, f := range zr.File {
		e := m.Entries[i]
		kind, err := zipKind(f)
		if err != nil {
			return nil, err
		}
		rc, err := f.Open()
		if err != nil {
			return nil, &ContentError{Entry: e.Path, Reason: err.Error()}
		}
		err = checkEntry(ctx, e, f.Name, kind, int64(f.UncompressedSize64), rc)
		_ = rc.Close() // read-only; a decompression error surfaced in the read
		if errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) {
			return nil, &ContentError{Entry: e.Path, Reason: err.Error()}
		}
		if err != nil {
			return nil, err
		}
	}
	return zr, nil
}

func verifyTarGz(ctx context.Context, r io.Reader, m *digest.Listing) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return &ContentError{Reason: "not a readable gzip stream: " + err.Error()}
	}
	tr := tar.NewReader(gz)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(m.Entries) {
				return &ContentError{Reason: fmt.Sprintf("it has %d entries, the listing %d", i, len(m.Entries))}
			}
			return nil
		}
		if err != nil {
			return &ContentError{Reason: "not a readable tar: " + err.Error()}
		}
		if i >= len(m.Entries) {
			return &ContentError{Reason: fmt.Sprintf("it has more than the listing's %d entries (%q)", len(m.Entries), h.Name)}
		}
		e := m.Entries[i]
		var kind digest.Kind
		switch {
		case h.Typeflag == tar.TypeSymlink:
			if err := checkEntry(ctx, e, h.Name, digest.KindSymlink, int64(len(h.Linkname)), strings.NewReader(h.Linkname)); err != nil {
				return err
			}
			continue
		case h.Typeflag == tar.TypeReg && h.Mode == 0o755:
			kind = digest.KindExec
		case h.Typeflag == tar.TypeReg && h.Mode == 0o644:
			kind = digest.KindFile
		default:
			return &ContentError{Entry: e.Path, Reason: fmt.Sprintf("the archive has %q of type %q, mode %o", h.Name, h.Typeflag, h.Mode)}
		}
		if err := checkEntry(ctx, e, h.Name, kind, h.Size, tr); err != nil {
			return err
		}
	}
}
