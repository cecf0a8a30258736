package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// Push pushes img to repository ("registry/repository") by digest: each
// blob the registry lacks (base blobs mounted from base's repository on
// the same registry, else copied from it), then the config, then the
// manifest by its digest. open gives the image's own layers, which are
// verified against their descriptors as they stream.
//
// Each blob is asked for first (HEAD) and sent only when missing; an own
// layer streams from open to the registry without being held in memory.
func (c *Client) Push(ctx context.Context, repository string, img *image.Image, base *image.Base, open Layers) (PushStats, error) {
	var stats PushStats
	repo, err := c.parseRepo(repository)
	if err != nil {
		return stats, err
	}
	if err := verify(img.Manifest, img.Digest.String(), -1, "the image's manifest"); err != nil {
		return stats, localErr(err)
	}
	if err := verify(img.Config, img.ConfigDigest.String(), -1, "the image's config"); err != nil {
		return stats, localErr(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(img.Manifest))
	if err != nil {
		return stats, fmt.Errorf("the image's manifest: %w", err)
	}
	if len(m.Layers) != len(img.Layers) {
		return stats, fmt.Errorf("the image's manifest has %d layers, its descriptors %d", len(m.Layers), len(img.Layers))
	}
	nBase := 0
	var baseRepo name.Repository
	if base != nil {
		bref, err := c.parseRef(base.Ref)
		if err != nil {
			return stats, err
		}
		baseRepo = bref.Context()
		bm, err := v1.ParseManifest(bytes.NewReader(base.Manifest))
		if err != nil {
			return stats, fmt.Errorf("base image %s: its manifest: %w", base.Ref, err)
		}
		nBase = len(bm.Layers)
		if nBase > len(img.Layers) {
			return stats, fmt.Errorf("the image has %d layers, fewer than its base %s (%d)", len(img.Layers), base.Ref, nBase)
		}
		for i, l := range bm.Layers {
			if l.Digest.String() != img.Layers[i].Digest.String() {
				return stats, fmt.Errorf("the image's layer %d is %s, its base %s has %s there", i, img.Layers[i].Digest, base.Ref, l.Digest)
			}
		}
	}

	blobs := make([]v1.Layer, 0, len(img.Layers)+1)
	for i, d := range img.Layers {
		bl := &blob{desc: d}
		switch {
		case i >= nBase:
			what := fmt.Sprintf("layer %d (%s)", i, d.Digest)
			bl.open = func(ctx context.Context) (io.ReadCloser, error) {
				rc, err := open(ctx, i)
				if err != nil {
					return nil, &SourceError{What: what, Layer: i, Err: err}
				}
				return verifying(rc, d, what, false, func(_ *digest.Verifier, err error) error {
					return &SourceError{What: what, Layer: i, Err: err}
				}, nil), nil
			}
			blobs = append(blobs, bl)
		default:
			from := baseRepo.Digest(d.Digest.String())
			bl.open = func(ctx context.Context) (io.ReadCloser, error) {
				// Failures here are the base registry's, named as such.
				l, err := c.puller.Layer(ctx, from)
				if err != nil {
					return nil, c.failRef(OpReadBlob, from, err)
				}
				rc, err := l.Compressed()
				if err != nil {
					return nil, c.failRef(OpReadBlob, from, err)
				}
				return verifying(rc, d, fmt.Sprintf("base layer %s of %s", d.Digest, baseRepo), true, func(_ *digest.Verifier, err error) error {
					return c.failRef(OpReadBlob, from, err)
				}, nil), nil
			}
			if baseRepo.RegistryStr() == repo.RegistryStr() && baseRepo.RepositoryStr() != repo.RepositoryStr() {
				// Same registry: go-containerregistry asks it to mount the
				// blob from the base's repository (and uploads it when the
				// registry declines).
				blobs = append(blobs, &remote.MountableLayer{Layer: bl, Reference: from})
			} else {
				blobs = append(blobs, bl)
			}
		}
	}
	cfg := img.Config
	blobs = append(blobs, &blob{
		desc: image.Descriptor{MediaType: string(m.Config.MediaType), Digest: img.ConfigDigest, Size: int64(len(cfg))},
		open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil },
	})

	outcomes := make([]struct{ uploaded, existing, mounted bool }, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, l := range blobs {
		g.Go(func() error {
			octx, obs := observe(gctx)
			var bl *blob
			switch l := l.(type) {
			case *blob:
				bl = l
			case *remote.MountableLayer:
				bl = l.Layer.(*blob) //nolint:forcetypeassert // built above from a *blob
			}
			bl.ctx = octx
			if err := c.pusher.Upload(octx, repo, l); err != nil {
				return classify(OpPushBlob, repo.RegistryStr(), repo.RepositoryStr(), bl.desc.Digest.String(), "", err, c.secrets)
			}
			o := &outcomes[i]
			o.existing, o.mounted = obs.outcome()
			o.uploaded = bl.opened.Load()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return stats, err
	}
	for _, o := range outcomes {
		switch {
		case o.uploaded:
			stats.Uploaded++
		case o.mounted:
			stats.Mounted++
		default: // found by HEAD, or already sent by this Client
			stats.Existing++
		}
	}
	if err := c.putManifest(ctx, OpPushManifest, repo.Digest(img.Digest.String()), img.MediaType, img.Manifest); err != nil {
		return stats, err
	}
	return stats, nil
}

// PushIndex pushes idx to repository by digest; its manifests must be
// there already.
func (c *Client) PushIndex(ctx context.Context, repository string, idx *image.Index) error {
	repo, err := c.parseRepo(repository)
	if err != nil {
		return err
	}
	if err := verify(idx.Manifest, idx.Digest.String(), -1, "the index's manifest"); err != nil {
		return localErr(err)
	}
	return c.putManifest(ctx, OpPushManifest, repo.Digest(idx.Digest.String()), idx.MediaType, idx.Manifest)
}

// Tag points tag of repository at the manifest d (already pushed there).
func (c *Client) Tag(ctx context.Context, repository, tag string, d image.Descriptor, manifest []byte) error {
	repo, err := c.parseRepo(repository)
	if err != nil {
		return err
	}
	if err := verify(manifest, d.Digest.String(), d.Size, "the manifest to tag"); err != nil {
		return localErr(err)
	}
	t, err := name.NewTag(repo.Name()+":"+tag, c.nameOpts(repo.RegistryStr())...)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	return c.putManifest(ctx, OpTag, t, d.MediaType, manifest)
}

// putManifest PUTs manifest at ref with its media type.
func (c *Client) putManifest(ctx context.Context, op Op, ref name.Reference, mediaType string, manifest []byte) error {
	if mediaType == "" {
		return fmt.Errorf("manifest for %s has no media type", ref)
	}
	err := c.pusher.Put(ctx, ref, rawManifest{b: manifest, mt: types.MediaType(mediaType)})
	return classify(op, ref.Context().RegistryStr(), ref.Context().RepositoryStr(), ref.Identifier(), mediaType, err, c.secrets)
}

// rawManifest is a manifest's bytes as go-containerregistry's Taggable.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// localErr marks an error in what the caller gave (not the registry's).
func localErr(err error) error {
	var de *DigestError
	if errors.As(err, &de) {
		de.FromRemote = false
	}
	return err
}

// blob is a layer or config as go-containerregistry's v1.Layer: its
// descriptor, and its bytes from open, which Push verifies as they
// stream. Opening it means it is being uploaded.
type blob struct {
	desc   image.Descriptor
	open   func(ctx context.Context) (io.ReadCloser, error)
	ctx    context.Context
	opened atomic.Bool
}

var _ v1.Layer = (*blob)(nil)

func (b *blob) Digest() (v1.Hash, error) { return v1.NewHash(b.desc.Digest.String()) }

// DiffID is not needed to push a blob.
func (b *blob) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("registry: a pushed blob's diff_id is not known here")
}

func (b *blob) Compressed() (io.ReadCloser, error) {
	b.opened.Store(true)
	return b.open(b.ctx)
}

func (b *blob) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("registry: a pushed blob is sent as it is, never uncompressed")
}

func (b *blob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return types.MediaType(b.desc.MediaType), nil }

// verifying passes a blob's bytes through, failing at EOF (before the
// reader sees io.EOF, so an upload is never committed) or past its size
// with a *DigestError naming what, fromRemote or not, when they are not
// the descriptor's size and digest, then made by wrap (nil: none). An
// error of rc's own (not io.EOF) is made by readErr, which may ask the
// verifier what it has read.
func verifying(rc io.ReadCloser, want image.Descriptor, what string, fromRemote bool,
	readErr func(v *digest.Verifier, err error) error, wrap func(error) error) io.ReadCloser {
	v := digest.VerifyingReader(rc, what, want.Digest, want.Size)
	v.OnMismatch = func(m *digest.MismatchError) error {
		var err error = &DigestError{What: what, Want: want.Digest.String(), Got: m.Got.String(), WantSize: want.Size, Size: m.Size, FromRemote: fromRemote}
		if wrap != nil {
			err = wrap(err)
		}
		return err
	}
	v.OnReadError = func(err error) error { return readErr(v, err) }
	return struct {
		io.Reader
		io.Closer
	}{v, rc}
}
