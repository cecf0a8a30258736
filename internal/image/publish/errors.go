package publish

import (
	"errors"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

var errNoClient = errors.New("no registry client is configured")

// ClientError is a registry client that could not be made. Its text is
// Err's.
type ClientError struct{ Err error }

func (e *ClientError) Error() string { return e.Err.Error() }
func (e *ClientError) Unwrap() error { return e.Err }

// BaseError is a base image that could not be read. Its text is Err's
// (a *registry.Error says what to do).
type BaseError struct {
	Ref string
	Err error
}

func (e *BaseError) Error() string { return e.Err.Error() }
func (e *BaseError) Unwrap() error { return e.Err }

// ChangedError is an image whose inputs, assembled again at apply, give
// another image than the plan's: a layer's content changed in between.
type ChangedError struct {
	Planned, Built digest.Sum
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the plan was made for %s, but the inputs now give %s", e.Planned, e.Built)
}

// TreeMissingError is one of the image's own layers whose tree is not in
// the store at the time the image is recorded (a collection may have
// deleted it since plan): nothing was recorded or pushed.
type TreeMissingError struct {
	Layer int // among the image's own layers, from 0
	Err   error
}

func (e *TreeMissingError) Error() string { return e.Err.Error() }
func (e *TreeMissingError) Unwrap() error { return e.Err }

// RecordError is a record of the image that could not be written:
// nothing was pushed.
type RecordError struct{ Err error }

func (e *RecordError) Error() string { return e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

// InterruptedError is the error of a BeforePush hook: nothing was
// pushed. Its text is the hook's.
type InterruptedError struct{ Err error }

func (e *InterruptedError) Error() string { return e.Err.Error() }
func (e *InterruptedError) Unwrap() error { return e.Err }

// LayerChangedError is one of the image's own layers whose content, as
// it streamed to the registry, was not the one planned (a file on disk
// changed, or the store holds a damaged blob): the manifest was not
// pushed.
type LayerChangedError struct {
	Layer int // among the image's own layers, from 0
	Err   error
}

func (e *LayerChangedError) Error() string {
	return fmt.Sprintf("layer %d no longer gives the content planned for it: %v", e.Layer, e.Err)
}
func (e *LayerChangedError) Unwrap() error { return e.Err }

// PushError is a push the registry (or the connection to it) failed: the
// manifest was not pushed. Its text is Err's.
type PushError struct{ Err error }

func (e *PushError) Error() string { return e.Err.Error() }
func (e *PushError) Unwrap() error { return e.Err }

// ResolveError is an image to tag that could not be read from the
// registry. Its text is Err's.
type ResolveError struct {
	Ref string
	Err error
}

func (e *ResolveError) Error() string { return e.Err.Error() }
func (e *ResolveError) Unwrap() error { return e.Err }

// TagError is a tag that could not be pointed at the image Ref, which is
// pushed. Its text is Err's.
type TagError struct {
	Tag, Ref string
	Err      error
}

func (e *TagError) Error() string { return e.Err.Error() }
func (e *TagError) Unwrap() error { return e.Err }
