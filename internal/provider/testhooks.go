package provider

import (
	"context"
	"sync/atomic"
)

// publishHook, when set, runs in the release resource's Create just before
// the record is written: tests use it to act at exactly that moment (stop
// the S3 server, hold two racing applies). Nothing in a release build sets
// it: in-process tests call setPublishHook, and the out-of-process race test
// builds the provider with -tags immutable_testhooks (testhooks_on.go).
var publishHook atomic.Pointer[func(context.Context) error]

// setPublishHook installs f (nil removes the hook) and returns a function
// that puts back the previous hook.
func setPublishHook(f func(context.Context) error) (restore func()) {
	var p *func(context.Context) error
	if f != nil {
		p = &f
	}
	old := publishHook.Swap(p)
	return func() { publishHook.Store(old) }
}

func runPublishHook(ctx context.Context) error {
	if f := publishHook.Load(); f != nil {
		return (*f)(ctx)
	}
	return nil
}
