package provider

import (
	"context"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// newTestProvider returns a constructor of the provider with the hooks h,
// for tests that act at a moment of an apply.
func newTestProvider(h hooks) func() provider.Provider {
	return func() provider.Provider { return &ImmutableProvider{version: "test", hooks: h} }
}

// protoV6With is protoV6 with the hooks h.
func protoV6With(h hooks) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"immutable": providerserver.NewProtocol6WithError(newTestProvider(h)()),
	}
}

// A testHook is a hook a test sets and changes between steps: its run is
// what the test passes to its provider (hooks{beforePublish: h.run}), its
// set what a step's PreConfig calls. The provider runs in the test process,
// on other goroutines: hence the atomic pointer.
type testHook struct {
	p atomic.Pointer[func(context.Context) error]
}

// set installs f (nil removes it) and returns a function that puts back
// the previous one.
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
