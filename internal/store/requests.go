package store

import (
	"context"
	"sync/atomic"
	"time"
)

// What the network backends (S3, Cloud Storage, Azure Blob) share to send
// requests: their limits, the count of an operation's tries and the error
// of an endpoint that never answered.

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
