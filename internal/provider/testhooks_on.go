//go:build immutable_testhooks

package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// EnvPublishBarrier names a directory for tests that race two applies in
// separate provider processes: just before publishing, the provider
// creates ready-<pid> there and waits until a file named "go" appears.
// Only a provider built with -tags immutable_testhooks reads it.
const EnvPublishBarrier = "IMMUTABLE_TEST_PUBLISH_BARRIER"

// publishBarrierTimeout bounds the wait: a test that never says "go" fails
// the apply with a clear error instead of hanging it.
const publishBarrierTimeout = 2 * time.Minute

// tagHooks are the hooks New gives the provider in this build: the
// publish barrier.
var tagHooks = hooks{beforePublish: func(ctx context.Context) error {
	dir := os.Getenv(EnvPublishBarrier)
	if dir == "" {
		return nil
	}
	return publishBarrier(ctx, dir, publishBarrierTimeout)
}}

func publishBarrier(ctx context.Context, dir string, timeout time.Duration) error {
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ready-%d", os.Getpid())), nil, 0o644); err != nil {
		return err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%s: no file \"go\" appeared in %s within %v; the test that set %s stopped waiting", EnvPublishBarrier, dir, timeout, EnvPublishBarrier)
		case <-tick.C:
		}
	}
}
