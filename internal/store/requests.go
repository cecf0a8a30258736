package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// What the network backends (S3, Cloud Storage, Azure Blob) share to send
// requests: their limits, the count of an operation's tries, the wait
// between tries, the error of an endpoint that never answered, and the
// loop of a batch delete.

const (
	// DefaultConcurrency is the number of requests a backend keeps in
	// flight by default: enough to hide a 20 ms round trip behind small
	// uploads (2,000 objects in about 2 s, `make bench`), few enough for
	// any S3-compatible server.
	DefaultConcurrency = 32
	// MaxConcurrency is the largest concurrency accepted.
	MaxConcurrency = 1024
	// DefaultMaxAttempts is how many times a request is tried by
	// default: with exponential backoff (at most MaxBackoff) a publish of
	// thousands of objects rides out a server asking it to slow down and
	// a network dropping connections for some seconds.
	DefaultMaxAttempts = 10
	// MaxAttempts is the largest number of attempts accepted.
	MaxAttempts = 100
	// MaxBackoff is the longest wait before a retry.
	MaxBackoff = 20 * time.Second
	// UnreachedAttempts is how many times a connection is tried to an
	// endpoint that has never answered: a mistyped endpoint or a server
	// that is down fails in a second, not after the whole budget.
	UnreachedAttempts = 3
)

// RequestLimits returns the concurrency and attempts a backend uses for
// the settings given: 0 (or less) is the default, more than the maximum
// is the maximum.
func RequestLimits(concurrency, attempts int) (int, int) {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	return min(concurrency, MaxConcurrency), min(attempts, MaxAttempts)
}

// Tries counts the tries of one operation, carried in its context.
type Tries struct{ n atomic.Int32 }

type triesKey struct{}

// WithTries returns ctx with a fresh count of the tries of the operation
// made with it, which a conditional write reads when it meets an object
// (a first try's conflict is another writer's) and an error reads to say
// how often it was tried.
func WithTries(ctx context.Context) (context.Context, *Tries) {
	t := new(Tries)
	return context.WithValue(ctx, triesKey{}, t), t
}

// TriesOf returns the count WithTries put in ctx, or nil.
func TriesOf(ctx context.Context) *Tries {
	t, _ := ctx.Value(triesKey{}).(*Tries)
	return t
}

// Add counts one more try and returns the count.
func (t *Tries) Add() int32 { return t.n.Add(1) }

// Load returns the count.
func (t *Tries) Load() int32 { return t.n.Load() }

// UnreachedError is a connection failure to an endpoint that has never
// answered, after UnreachedAttempts tries: not retried further.
type UnreachedError struct{ Err error }

func (e *UnreachedError) Error() string { return e.Err.Error() }

func (e *UnreachedError) Unwrap() error { return e.Err }

// NonRetriable tells the Azure SDK's retry policy to stop.
func (e *UnreachedError) NonRetriable() {}

// Backoff is the wait before try attempt+1: exponential from 200 ms, at
// most MaxBackoff, with jitter (between half and all of it), so that
// requests failed together do not retry together.
func Backoff(attempt int) time.Duration {
	d := MaxBackoff
	if attempt >= 1 && attempt < 20 {
		d = min(d, 200*time.Millisecond<<(attempt-1))
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not a secret
}

// Sleep waits d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNotSent is the result of a key whose delete was never sent (the
// context ended first).
var ErrNotSent = errors.New("not deleted: the collection was stopped before this delete was sent")

// BatchDelete is a backend's batch delete: what it has of its own is how
// one request is sent and its answer read (Send); the chunking, the
// request slots and the retries are Run's.
type BatchDelete struct {
	// Size is the most keys one request takes.
	Size int
	// Attempts is how many requests a key may be in, in all: the tries
	// counted in Send's context (WithTries: each request the backend's
	// client makes, its SDK's retries included), or Send's calls when
	// its client counts none.
	Attempts int
	// Acquire and Release take and give back a request slot, held while
	// Send builds its request, sends it and reads the answer (so no more
	// request bodies exist at once than slots).
	Acquire func(context.Context) error
	Release func()
	// Send sends one request deleting keys[i] for each i in todo, and
	// sets errs[i] for each: nil when the key is gone (a missing key is
	// gone). It returns the indices to send again: those answered as a
	// busy or failing server answers, and those the answer said nothing
	// of. An error stops the chunk (see Fallback), with errs as Send left
	// them.
	Send func(ctx context.Context, keys []string, todo []int, errs []error) (again []int, err error)
	// Fallback, when set, deletes the keys of a chunk whose Send returned
	// an error (an endpoint refusing batch requests, say), holding no
	// slot, setting errs[i] for each keys[i].
	Fallback func(ctx context.Context, keys []string, errs []error)
}

// Run deletes keys in requests of at most Size keys, every chunk at once
// (each request holding a slot, so no more at once than the backend
// sends), and returns each key's result, as BatchDeleter.DeleteMany does:
// ErrNotSent until a request of it is answered. The keys a chunk's answer
// says to send again go in a request of their own after Backoff, until
// each has been in Attempts requests.
func (d BatchDelete) Run(ctx context.Context, keys []string) []error {
	errs := make([]error, len(keys))
	for i := range errs {
		errs[i] = ErrNotSent
	}
	chunks := (len(keys) + d.Size - 1) / d.Size
	_ = ForEach(ctx, chunks, chunks, func(ctx context.Context, c int) error {
		lo, hi := c*d.Size, min(len(keys), (c+1)*d.Size)
		d.chunk(ctx, keys[lo:hi], errs[lo:hi])
		return nil // each key has its result
	})
	return errs
}

// chunk deletes keys, at most Size, setting errs[i] for each keys[i].
func (d BatchDelete) chunk(ctx context.Context, keys []string, errs []error) {
	tctx, tries := WithTries(ctx)
	todo := make([]int, len(keys))
	for i := range todo {
		todo[i] = i
	}
	for sent := 1; ; sent++ {
		if err := d.Acquire(tctx); err != nil {
			return // the keys keep their results
		}
		again, err := d.Send(tctx, keys, todo, errs)
		d.Release()
		if err != nil {
			if d.Fallback != nil {
				d.Fallback(ctx, keys, errs)
			}
			return
		}
		n := max(int(tries.Load()), sent) // every key of again was in every try
		if len(again) == 0 || n >= d.Attempts {
			return
		}
		if Sleep(tctx, Backoff(n)) != nil {
			return // the keys left keep their last results
		}
		todo = again
	}
}
