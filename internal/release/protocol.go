package release

import (
	"context"

	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// The writer's protocol. Every operation that writes something naming
// other objects of the store (a record names its artifacts, a channel move
// its version) follows the same steps, in one function of this package,
// so that a resource calls one validated operation and never orchestrates
// them itself:
//
//  0. Validate: the input alone, reading and writing nothing. Input that
//     would be refused is an *InvalidError (or the typed error of its
//     check: *ArtifactDigestError, *TooLargeError) before any lease is
//     taken, so that a refusal leaves nothing behind: no lease, and not
//     the store's identity that the first lease of a new store writes.
//  1. Take the lease: store.Store.Hold on every key the write will rely
//     on, before any of them is checked, so that a garbage collection
//     running now does not delete one between the check and the write
//     (see store's collector protocol).
//  2. Check: what the write relies on is there (the artifacts are stored,
//     the version is published and not yanked, the position is the one
//     planned), reading only.
//  3. Write: the write-once entry, once.
//
// If the operation stops before its write (a check failed, it was refused
// or interrupted), it drops the lease: nothing names the held keys, and
// nothing should keep them. Once a write was attempted the lease stays,
// even when the write returned an error: it may have landed, and a
// collector running now must still see the lease.
//
// A new writer (an image) follows Publish: a step that must happen for
// every write of its kind goes inside the operation, not in the resource
// that calls it. Signing is one (SignWith, sign.go): after the write, of
// the bytes the record's key holds then (a signature names a record's
// digest, which exists only once it is written), and again on a run that
// finds the record already written, so an interrupted one is signed by
// the next.

// Option adjusts one write operation (Publish, MoveTo, SetYank).
type Option func(*options)

type options struct {
	beforeWrite func(context.Context) error
	signer      *signature.Signer // SignWith
}

// BeforeWrite runs f after the operation's checks passed, with its lease
// held, just before its first write: an error from f stops the operation,
// which writes nothing, drops its lease and returns that error as an
// *InterruptedError. A nil f is no hook. Tests use it to act at exactly
// that moment.
func BeforeWrite(f func(context.Context) error) Option {
	return func(o *options) { o.beforeWrite = f }
}

// InterruptedError is the error of a BeforeWrite hook, which stopped the
// operation before its first write: nothing was written. Its text is the
// hook's.
type InterruptedError struct{ Err error }

func (e *InterruptedError) Error() string { return e.Err.Error() }

func (e *InterruptedError) Unwrap() error { return e.Err }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (o options) runBeforeWrite(ctx context.Context) error {
	if o.beforeWrite == nil {
		return nil
	}
	if err := o.beforeWrite(ctx); err != nil {
		return &InterruptedError{Err: err}
	}
	return nil
}

// Step names a step of the writer's protocol, for a *StepError.
type Step int

const (
	// StepHold is taking the lease (store.Store.Hold).
	StepHold Step = iota
	// StepCheck is reading what the write relies on.
	StepCheck
	// StepWrite is the write itself.
	StepWrite
)

// StepError is a failure of the store during one step of a write
// operation: taking the lease, reading what the write relies on, or the
// write (which may also meet another writer's entry: a refusal such as
// *ConflictError or *MovedError, wrapped too). Its text is the failure's
// own; Step says whether anything may have been written (only at
// StepWrite). Invalid input is never a StepError: it is refused before the
// first step (see Validate above). A check's refusal (an artifact not
// stored, a version not published or yanked, a gate) is returned as it is.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// Input names an input of a write operation, for an *InvalidError.
type Input int

const (
	// InputRelease is the release name (Record.Name, MoveRequest.Release).
	InputRelease Input = iota
	// InputVersion is the version (Record.Version, MoveRequest.To).
	InputVersion
	// InputArtifact is a name of Record.Artifacts (InvalidError.Key).
	InputArtifact
	// InputMetadata is a key of Record.Metadata (InvalidError.Key).
	InputMetadata
	// InputChannel is MoveRequest.Channel.
	InputChannel
	// InputReason is MoveRequest.Reason.
	InputReason
	// InputRequires is a gate of MoveRequest.Requires (InvalidError.Key).
	InputRequires
	// InputImageName is a name of Record.Images (InvalidError.Key).
	InputImageName
	// InputImage is the reference of the image InvalidError.Key names in
	// Record.Images.
	InputImage
)

// InvalidError is input a write operation refuses before its first step
// (see the protocol above): nothing was read or written, and no lease was
// taken. Its text is the check's (CheckName, versions.Parse, …).
type InvalidError struct {
	Input Input
	// Key is the artifact name, metadata key, gate or image name at
	// fault, for InputArtifact, InputMetadata, InputRequires,
	// InputImageName and InputImage.
	Key string
	Err error
}

func (e *InvalidError) Error() string { return e.Err.Error() }

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(in Input, key string, err error) error {
	if err == nil {
		return nil
	}
	return &InvalidError{Input: in, Key: key, Err: err}
}

// hold takes the lease of the protocol's first step.
func hold(ctx context.Context, st *store.Store, keys ...string) (*store.Lease, error) {
	lease, err := st.Hold(ctx, keys...)
	if err != nil {
		return nil, &StepError{Step: StepHold, Err: err}
	}
	return lease, nil
}
