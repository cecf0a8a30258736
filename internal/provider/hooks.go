package provider

import "context"

// hooks are moments of an apply at which a test acts (stops the S3
// server, holds two racing applies, records a build step "from another
// machine"). A provider carries its own, copied into each operation's
// providerData; each is passed on to the library that runs it as its
// option (release.BeforeWrite, actioncache.Step.BeforeRecord), which skips
// a nil one. New gives tagHooks: none in a release build (testhooks_off.go);
// in-process tests build providers with their own (newTestProvider).
type hooks struct {
	// beforePublish runs in the release resource's Create just before the
	// record is written.
	beforePublish func(context.Context) error
	// beforeMove runs in the channel resource just before a move is written.
	beforeMove func(context.Context) error
	// beforeRecord runs in the build resource's Create after a step ran,
	// just before its action record is written.
	beforeRecord func(context.Context) error
	// beforePush runs in the image resource's Create just before the
	// image is pushed, after the layers it depends on were applied.
	beforePush func(context.Context) error
}
