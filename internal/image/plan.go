package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Request is what an image is made of.
type Request struct {
	Base     *Base // nil: from scratch
	Layers   []LayerSpec
	Config   Config
	Platform Platform
	Created  time.Time
}

// Built is an assembled image and what its own layers were made from.
type Built struct {
	*Image
	Base   *Base
	Layers []Layer // the image's own layers, after the base's
}

// Known returns a layer already described for spec (by an earlier plan),
// ok false when there is none.
type Known func(spec LayerSpec) (Layer, bool)

// LayerError is a layer that could not be encoded: Index is its position
// among the request's layers.
type LayerError struct {
	Index int
	Spec  LayerSpec
	Err   error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("layer %d (%s at %s): %v", e.Index, e.Spec.Tree, e.Spec.Path, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// NotStored reports whether the layer's tree is neither in the store nor
// on disk in this operation.
func (e *LayerError) NotStored() bool {
	return errors.Is(e.Err, store.ErrNotFound) || errors.Is(e.Err, fs.ErrNotExist)
}

// Plan assembles req: each layer is taken from known when it has the
// same spec, else encoded from src (to nowhere: only its digests are
// kept). Nothing is written anywhere.
func Plan(ctx context.Context, req Request, src Source, known Known) (*Built, error) {
	layers := make([]Layer, len(req.Layers))
	for i, spec := range req.Layers {
		if known != nil {
			if l, ok := known(spec); ok {
				layers[i] = l
				continue
			}
		}
		l, err := DescribeLayer(ctx, src, spec)
		if err != nil {
			return nil, &LayerError{Index: i, Spec: spec, Err: err}
		}
		layers[i] = l
	}
	img, err := Assemble(req.Base, layers, req.Config, req.Platform, req.Created)
	if err != nil {
		return nil, err
	}
	return &Built{Image: img, Base: req.Base, Layers: layers}, nil
}

// BaseLayers is how many of the image's layers come from its base.
func (b *Built) BaseLayers() int { return len(b.Image.Layers) - len(b.Layers) }

// Opener returns a function opening the encoded bytes of the image's own
// layer i (i counting every layer, the base's first), encoded from src as
// they are read: nothing is buffered, and the stream fails at its end
// unless it is the planned layer (digest, size and diff_id).
func (b *Built) Opener(src Source) func(ctx context.Context, i int) (io.ReadCloser, error) {
	return func(ctx context.Context, i int) (io.ReadCloser, error) {
		own := i - b.BaseLayers()
		if own < 0 || own >= len(b.Layers) {
			return nil, fmt.Errorf("layer %d is not one of the image's own layers", i)
		}
		want := b.Layers[own]
		pr, pw := io.Pipe()
		go func() {
			got, err := WriteLayer(ctx, src, want.Spec, pw)
			if err == nil && (got.Digest != want.Digest || got.Size != want.Size || got.DiffID != want.DiffID) {
				err = fmt.Errorf("layer %d encodes to %s (%d bytes, diff_id %s), not the planned %s (%d bytes, diff_id %s): its content changed since plan, or the digests planned came from a provider built with another Go release than this one's (%s): a gzip layer's digest depends on Go's compress/flate, its diff_id does not",
					i, got.Digest, got.Size, got.DiffID, want.Digest, want.Size, want.DiffID, runtime.Version())
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
}
