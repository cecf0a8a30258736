package publish

import (
	"context"
	"errors"
	"sort"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
)

// Option adjusts one Push.
type Option func(*options)

type options struct {
	beforePush func(context.Context) error
}

// BeforePush runs f after the image was recorded, just before anything
// is sent to the registry: an error from f stops Push, which pushes
// nothing and returns it as an *InterruptedError. A nil f is no hook.
// Tests use it to act at exactly that moment.
func BeforePush(f func(context.Context) error) Option {
	return func(o *options) { o.beforePush = f }
}

// Pushed is what a Push did.
type Pushed struct {
	// Stats counts the blobs uploaded, mounted and found.
	Stats registry.PushStats
	// RecordKept is the key of the store's record of the image when
	// another configuration had recorded the same image as made of other
	// (equivalent) inputs: that record stands. "" otherwise.
	RecordKept string
}

// Push publishes b, planned in this operation or assembled again by
// Built: it records the image in the store (what its layers are made of:
// a release diff names changed layers by it, an export writes the image
// from it, the collector keeps its trees), pushes it to repository by
// digest (only the blobs the registry lacks, each own layer encoded from
// its tree as it streams and checked against the plan), then points tags
// at it, in order.
//
// Errors: *ClientError, *TreeMissingError and *RecordError (nothing
// pushed), *InterruptedError (BeforePush's), *LayerChangedError and
// *PushError (the manifest not pushed), *TagError (the image pushed).
// After a failed push the layers are dropped from the machine's layer
// cache: their bytes may differ from what a plan took from it, so the
// next plan encodes them again.
func (op *Operation) Push(ctx context.Context, repository string, b *image.Built, tags []string, opts ...Option) (Pushed, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var out Pushed
	c, err := op.Client(ctx)
	if err != nil {
		return out, err
	}
	kept, err := op.record(ctx, b)
	if err != nil {
		return out, err
	}
	out.RecordKept = kept
	if o.beforePush != nil {
		if err := o.beforePush(ctx); err != nil {
			return out, &InterruptedError{Err: err}
		}
	}
	stats, err := c.Push(ctx, repository, b.Image, b.Base, b.Opener(op.Source()))
	if err != nil {
		for _, l := range b.Layers {
			op.o.Cache.Forget(l.Spec)
		}
		var se *registry.SourceError
		if errors.As(err, &se) {
			return out, &LayerChangedError{Layer: se.Layer - b.BaseLayers(), Err: se.Err}
		}
		return out, &PushError{Err: err}
	}
	out.Stats = stats
	desc := image.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Manifest))}
	return out, tag(ctx, c, repository, tags, desc, b.Manifest)
}

// Retag points tags at the image ref ("repository@sha256:…"), already
// pushed and recorded: its manifest is read by digest from the registry
// (verified), so nothing is assembled again.
//
// Errors: *ClientError, *ResolveError (the image could not be read),
// *TagError.
func (op *Operation) Retag(ctx context.Context, repository, ref string, tags []string) error {
	c, err := op.Client(ctx)
	if err != nil {
		return err
	}
	res, err := c.Resolve(ctx, ref)
	if err != nil {
		return &ResolveError{Ref: ref, Err: err}
	}
	return tag(ctx, c, repository, tags, res.Descriptor, res.Manifest)
}

// tag points tags (in sorted order) of repository at the manifest d.
func tag(ctx context.Context, c *registry.Client, repository string, tags []string, d image.Descriptor, manifest []byte) error {
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	for _, t := range tags {
		if err := c.Tag(ctx, repository, t, d, manifest); err != nil {
			return &TagError{Tag: t, Ref: repository + "@" + d.Digest.String(), Err: err}
		}
	}
	return nil
}

// record writes the store's record of b; an existing record of the same
// image stands, and its key is returned.
func (op *Operation) record(ctx context.Context, b *image.Built) (kept string, err error) {
	err = image.PutRecord(ctx, op.o.Store, image.NewRecord(b.Image, b.Base, b.Layers), b.Manifest, b.Config)
	var (
		conflict *image.RecordConflictError
		missing  *image.TreeMissingError
	)
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &conflict) && conflict.Existing != nil:
		return conflict.Key, nil
	case errors.As(err, &missing):
		return "", &TreeMissingError{Layer: missing.Layer - 1, Err: missing}
	default:
		return "", &RecordError{Err: err}
	}
}
