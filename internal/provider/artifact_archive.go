package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// ensureArchive returns the archive of listing in format, building it
// from open and storing it only if none is stored yet: an archive is
// never rebuilt.
func ensureArchive(ctx context.Context, st *store.Store, format string, listing *digest.Manifest, open archive.Opener) (digest.Sum, error) {
	version, key := archive.Version(format), listing.Digest()
	sum, err := st.GetArchiveRef(ctx, version, key)
	if err == nil {
		return sum, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return sum, err
	}
	// The archive's digest is only known once it is built, so it is built
	// into a private temporary file first and then stored as a blob.
	tmp, err := os.CreateTemp("", "immutable-archive-*")
	if err != nil {
		return sum, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if err := archive.Write(ctx, io.MultiWriter(tmp, h), format, listing, open); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	if _, err := st.PutBlob(ctx, sum, tmp); err != nil {
		return sum, err
	}
	return st.PutArchiveRef(ctx, version, key, sum)
}

// sourceOpener reads archive entries from the source just stored, not back
// from the store (for S3 that would download everything just uploaded).
// Each entry is verified against the manifest as it is read, so the
// archive holds exactly the stored content or its build fails.
func sourceOpener(src string, isDir bool) archive.Opener {
	return func(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
		p := src
		if isDir {
			p = filepath.Join(src, filepath.FromSlash(e.Path))
		}
		if e.Kind == digest.KindSymlink {
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(store.Verified(strings.NewReader(target), e.Path, e.SHA256)), nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{store.Verified(f, e.Path, e.SHA256), f}, nil
	}
}

// writeOutput copies a stored blob to path atomically: a reader of path
// sees the old file or the whole new one. Missing parent directories are
// created, as local_file and archive_file do.
func writeOutput(ctx context.Context, st *store.Store, sum digest.Sum, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rc, err := st.OpenBlob(ctx, sum)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := digest.Copy(ctx, tmp, rc); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
