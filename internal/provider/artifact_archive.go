package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// ensureArchive returns the archive of listing in format, building and
// storing it only if none is stored yet: an archive is never rebuilt.
func ensureArchive(ctx context.Context, st *store.Store, format string, listing *digest.Manifest) (digest.Sum, error) {
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
	if err := archive.Write(ctx, io.MultiWriter(tmp, h), format, listing, st.OpenEntry); err != nil {
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
