// Package publish is the writer's protocol of an image: planning it from
// a request (its base read once, its platform chosen, its layers taken
// from what is known or encoded from their trees) and applying it
// (recorded in the store, pushed to the registry by digest, tagged), and
// what one operation remembers between the two.
//
// It sits beside package image rather than inside it because it calls
// package registry, which imports image. It imports no Terraform
// library: internal/provider translates attributes into a Request and
// maps each of this package's typed errors to a diagnostic on the
// attribute it concerns.
package publish

import (
	"context"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Options are what an Operation works with.
type Options struct {
	// Store holds the layers' trees and the images' records.
	Store *store.Store
	// Client returns the operation's registry client, made on first use.
	Client func(context.Context) (*registry.Client, error)
	// Planned reads content this operation hashed from disk but may not
	// have stored yet (an artifact planned beside the image); nil: none.
	// It is read before the store.
	Planned image.Source
	// Cache is the machine's layer cache; nil: none.
	Cache *image.LayerCache
}

// Operation is one Terraform operation's images: it remembers what it
// planned, the images by manifest digest (apply pushes what its final
// plan assembled) and the layers by spec (another image of the same
// layer does not encode it again).
type Operation struct {
	o      Options
	images sync.Map // digest.Sum -> *image.Built
	layers sync.Map // image.LayerSpec -> image.Layer
}

// New returns an operation working with o.
func New(o Options) *Operation { return &Operation{o: o} }

// Client returns the operation's registry client; a failure to make it
// is a *ClientError.
func (op *Operation) Client(ctx context.Context) (*registry.Client, error) {
	if op.o.Client == nil {
		return nil, &ClientError{Err: errNoClient}
	}
	c, err := op.o.Client(ctx)
	if err != nil {
		return nil, &ClientError{Err: err}
	}
	return c, nil
}

// Source reads layers' trees: from disk for content this operation
// hashed (an artifact not stored yet), else from the store.
func (op *Operation) Source() image.Source {
	if op.o.Planned == nil {
		return image.StoreSource(op.o.Store)
	}
	return image.MultiSource(op.o.Planned, image.StoreSource(op.o.Store))
}

// Planned returns the image with manifest digest sum planned in this
// operation.
func (op *Operation) Planned(sum digest.Sum) (*image.Built, bool) {
	v, ok := op.images.Load(sum)
	if !ok {
		return nil, false
	}
	b, ok := v.(*image.Built)
	return b, ok
}

// remember keeps b as planned in this operation, and its layers in the
// operation's memo and the machine's cache.
func (op *Operation) remember(b *image.Built) {
	op.images.Store(b.Digest, b)
	for _, l := range b.Layers {
		op.layers.Store(l.Spec, l)
		op.o.Cache.Put(l)
	}
}

// Entry is the index entry (descriptor and platform) of the image ref
// ("registry/repository@sha256:…"): the image planned in this operation
// under that digest, else its manifest and config read from the
// registry.
func (op *Operation) Entry(ctx context.Context, ref string) (image.IndexEntry, error) {
	_, sum, err := registry.SplitDigestRef(ref)
	if err != nil {
		return image.IndexEntry{}, err
	}
	if b, ok := op.Planned(sum); ok {
		return image.IndexEntry{Descriptor: image.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Manifest))}, Platform: b.Platform}, nil
	}
	c, err := op.Client(ctx)
	if err != nil {
		return image.IndexEntry{}, err
	}
	base, err := c.Base(ctx, ref, image.Platform{})
	if err != nil {
		return image.IndexEntry{}, err
	}
	p, err := image.ConfigPlatform(base.Config)
	if err != nil {
		return image.IndexEntry{}, err
	}
	return image.IndexEntry{
		Descriptor: image.Descriptor{MediaType: base.MediaType, Digest: digest.Bytes(base.Manifest), Size: int64(len(base.Manifest))},
		Platform:   p,
	}, nil
}
