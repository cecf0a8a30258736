package publish

import (
	"context"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// DefaultPlatform is the platform of an image from scratch that sets none.
const DefaultPlatform = "linux/amd64"

// Request is an image to plan.
type Request struct {
	// Base is the image built on, "registry/repository@sha256:…" (an
	// image manifest, or an index of which Platform is taken); "" from
	// scratch.
	Base string
	// Platform is the image's; nil: the base's, else DefaultPlatform.
	Platform *image.Platform
	Layers   []image.LayerSpec
	Config   image.Config
	Created  time.Time
	// Known are layers described before (the state's), by spec: taken
	// as they are, not encoded again.
	Known map[image.LayerSpec]image.Layer
}

// Plan assembles req and remembers it as planned in this operation (see
// Planned), with its layers. The base is read once; each layer is taken
// from req.Known, this operation's layers or the machine's layer cache,
// else encoded (to nowhere) from its tree, on disk when this operation
// hashed it, else in the store. Nothing is written but the cache.
//
// Errors: *ClientError, *BaseError (the base could not be read), an
// *image.LayerError (a layer could not be encoded: its index, and
// NotStored when its tree is nowhere), else assembly's.
func (op *Operation) Plan(ctx context.Context, req Request) (*image.Built, error) {
	b, err := op.assemble(ctx, req)
	if err != nil {
		return nil, err
	}
	op.remember(b)
	return b, nil
}

// Built returns the image planned as planned (a manifest digest; zero
// when the plan did not know it) in this operation, else assembles req
// again, as Plan does but remembering nothing: an apply in a process
// that did not plan the image. An image of req that is not the planned
// one is a *ChangedError.
func (op *Operation) Built(ctx context.Context, planned digest.Sum, req Request) (*image.Built, error) {
	if b, ok := op.Planned(planned); ok {
		return b, nil
	}
	b, err := op.assemble(ctx, req)
	if err != nil {
		return nil, err
	}
	if planned != (digest.Sum{}) && b.Digest != planned {
		return nil, &ChangedError{Planned: planned, Built: b.Digest}
	}
	return b, nil
}

func (op *Operation) assemble(ctx context.Context, r Request) (*image.Built, error) {
	req := image.Request{Layers: r.Layers, Config: r.Config, Created: r.Created}
	if r.Base != "" {
		c, err := op.Client(ctx)
		if err != nil {
			return nil, err
		}
		p := image.Platform{}
		if r.Platform != nil {
			p = *r.Platform
		}
		base, err := c.Base(ctx, r.Base, p)
		if err != nil {
			return nil, &BaseError{Ref: r.Base, Err: err}
		}
		req.Base = base
	}
	switch {
	case r.Platform != nil:
		req.Platform = *r.Platform
	case req.Base != nil:
		req.Platform = image.Platform{} // Assemble takes the base's
	default:
		req.Platform, _ = image.ParsePlatform(DefaultPlatform)
	}
	return image.Plan(ctx, req, op.Source(), op.known(r.Known))
}

// known finds a layer in state, then in this operation's memo, then in
// the machine's cache.
func (op *Operation) known(state map[image.LayerSpec]image.Layer) image.Known {
	return func(spec image.LayerSpec) (image.Layer, bool) {
		if l, ok := state[spec]; ok {
			return l, true
		}
		if v, ok := op.layers.Load(spec); ok {
			if l, ok := v.(image.Layer); ok {
				return l, true
			}
		}
		return op.o.Cache.Get(spec)
	}
}
