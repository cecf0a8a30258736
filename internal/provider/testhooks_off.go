//go:build !immutable_testhooks

package provider

// tagHooks are the hooks New gives the provider: none in a release build.
// The out-of-process race test builds with -tags immutable_testhooks
// instead (testhooks_on.go).
var tagHooks hooks
