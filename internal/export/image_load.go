package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// BaseOpener reads a blob of repository ("registry/repository") from its
// registry: a base image's layer, which the store does not hold.
type BaseOpener func(ctx context.Context, repository string, d image.Descriptor) (io.ReadCloser, error)

// NotImageError is a digest exported as an image that names none: a file
// in the store with no image record.
type NotImageError struct {
	Digest digest.Sum
	Format Format
}

func (e *NotImageError) Error() string {
	return fmt.Sprintf("%s names a file in the store, not an image built by immutable_image: %q exports an image by its "+
		"manifest digest (immutable_image's `digest`); a file artifact is exported as %q", e.Digest, e.Format, File)
}

// BaseError is an image built on a base, exported where no registry can
// be read: the base's layers are not in the store.
type BaseError struct {
	Image digest.Sum
	Base  string
	Err   error // why the registry cannot be read; nil when none is configured
}

func (e *BaseError) Error() string {
	why := "no registry client is available"
	if e.Err != nil {
		why = e.Err.Error()
	}
	return fmt.Sprintf("the image %s is built on %s, whose layers are not in the store but in its registry, and %s. "+
		"Export it where that registry is reachable (with the provider's registry settings), or build the image from "+
		"scratch (no `base`) so that every layer comes from the store", e.Image, e.Base, why)
}

func (e *BaseError) Unwrap() error { return e.Err }

// LoadImage reads the image whose manifest has the sha256 sum from the
// store, for an export in format (OCILayout or DockerArchive): its record
// (verified against its manifest and config, package image), the manifest
// itself, and the export's listing. Its blobs are read as the export is
// written: the config from the store, the image's own layers encoded
// again from their stored trees (image.WriteLayer), a base's layers from
// its registry through base (nil: none can be read, and an image with a
// base is a *BaseError). Every byte is checked against its descriptor as
// it streams. A digest the store does not hold is an error wrapping
// store.ErrNotFound; a tree is a *FormatError; a file with no image
// record a *NotImageError.
func LoadImage(ctx context.Context, st *store.Store, sum digest.Sum, format Format, base BaseOpener) (*Content, error) {
	c, err := Load(ctx, st, sum)
	if err != nil {
		return nil, err
	}
	if c.Kind == store.Tree {
		return nil, &FormatError{Format: format, Kind: c.Kind}
	}
	rec, err := image.GetRecord(ctx, st, sum)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotImageError{Digest: sum, Format: format}
	} else if err != nil {
		return nil, err
	}
	manifest, err := readManifest(ctx, st, sum)
	if err != nil {
		return nil, err
	}
	c.Image, err = ParseImage(sum, manifest, nil)
	if err != nil {
		return nil, err
	}
	im := c.Image
	im.Base = rec.Base
	if rec.Base != "" && base == nil {
		return nil, &BaseError{Image: sum, Base: rec.Base}
	}
	// The record's layers are the manifest's last ones (GetRecord checked).
	own := map[digest.Sum]image.LayerSpec{}
	for _, l := range rec.Layers {
		d, _ := digest.Parse(l.Digest) // GetRecord checked them
		tree, _ := digest.Parse(l.Tree)
		own[d] = image.LayerSpec{Tree: tree, Path: l.Path, UID: l.UID, GID: l.GID, FileMode: l.FileMode, DirMode: l.DirMode, Compression: l.Compression}
	}
	repository, _, _ := strings.Cut(rec.Base, "@")
	src := image.StoreSource(st)
	im.open = func(ctx context.Context, d image.Descriptor) (io.ReadCloser, error) {
		if spec, ok := own[d.Digest]; ok {
			return encodeLayer(ctx, src, spec), nil
		}
		if d.Digest == im.Config.Digest {
			return st.OpenBlob(ctx, d.Digest)
		}
		rc, err := base(ctx, repository, d)
		if err != nil {
			return nil, &BaseError{Image: sum, Base: rec.Base, Err: err}
		}
		return rc, nil
	}
	c.Listing = im.Listing(format)
	c.Open = im.Opener(format)
	return c, nil
}

// maxManifest bounds a manifest read back (registries refuse over 4 MiB).
const maxManifest = 4 << 20

// readManifest reads the manifest blob sum from st, verified.
func readManifest(ctx context.Context, st *store.Store, sum digest.Sum) ([]byte, error) {
	rc, err := st.OpenBlob(ctx, sum)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, &ManifestError{Digest: sum, Reason: fmt.Sprintf("is over %d bytes", maxManifest)}
	}
	return b, nil
}

// encodeLayer streams the layer of spec, encoded again from its tree; the
// caller checks it against the record's descriptor (Opener does).
func encodeLayer(ctx context.Context, src image.Source, spec image.LayerSpec) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := image.WriteLayer(ctx, src, spec, pw)
		_ = pw.CloseWithError(err) // nil: the reader sees EOF
	}()
	return &encoded{PipeReader: pr, cancel: cancel, done: done}
}

type encoded struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

// Close stops the encoder and waits for it.
func (e *encoded) Close() error {
	e.cancel()
	err := e.PipeReader.Close() // the encoder's next write fails
	<-e.done
	return err
}

// WrittenImageListing returns the listing of the OCILayout export of
// the image sum at target: from the manifest in the store or, when the
// store cannot give it, from the manifest the export wrote at target if
// that still hashes to sum.
func WrittenImageListing(ctx context.Context, st *store.Store, sum digest.Sum, target string) (*digest.Listing, error) {
	manifest, err := readManifest(ctx, st, sum)
	if err != nil {
		var ok bool
		if manifest, ok = writtenManifest(ctx, target, sum); !ok {
			return nil, fmt.Errorf("the manifest of %s, which the export wrote, cannot be read from %s: %w", sum, st, err)
		}
	}
	im, err := ParseImage(sum, manifest, nil)
	if err != nil {
		return nil, err
	}
	return im.Listing(OCILayout), nil
}

// writtenManifest reads the manifest sum at target's blobs/sha256/<hex>,
// not following a link, if it hashes to sum.
func writtenManifest(ctx context.Context, target string, sum digest.Sum) ([]byte, bool) {
	root, err := os.OpenRoot(target)
	if err != nil {
		return nil, false
	}
	defer func() { _ = root.Close() }() // read-only
	p := blobPath(sum)
	fi, err := root.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxManifest {
		return nil, false
	}
	f, err := openRegular(root, p, fi)
	if err != nil {
		return nil, false
	}
	defer func() { _ = f.Close() }() // read-only
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil || ctx.Err() != nil || digest.Bytes(b) != sum {
		return nil, false
	}
	return b, true
}
