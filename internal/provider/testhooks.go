package provider

import (
	"context"
	"sync/atomic"
)

// A testHook, when set, runs at one moment of an apply, so that a test can
// act at exactly that moment (stop the S3 server, hold two racing applies,
// record a build step "from another machine"). Nothing in a release build
// sets one: in-process tests call set, and the out-of-process race test
// builds the provider with -tags immutable_testhooks (testhooks_on.go).
type testHook struct {
	p atomic.Pointer[func(context.Context) error]
}

// set installs f (nil removes the hook) and returns a function that puts
// back the previous hook.
func (h *testHook) set(f func(context.Context) error) (restore func()) {
	var p *func(context.Context) error
	if f != nil {
		p = &f
	}
	old := h.p.Swap(p)
	return func() { h.p.Store(old) }
}

func (h *testHook) run(ctx context.Context) error {
	if f := h.p.Load(); f != nil {
		return (*f)(ctx)
	}
	return nil
}

var (
	// publishHook runs in the release resource's Create just before the
	// record is written.
	publishHook testHook
	// recordHook runs in the build resource's Create after a step ran,
	// just before its action record is written.
	recordHook testHook
	// moveHook runs in the channel resource just before a move is written.
	moveHook testHook
)

func setPublishHook(f func(context.Context) error) (restore func()) { return publishHook.set(f) }

func runPublishHook(ctx context.Context) error { return publishHook.run(ctx) }
