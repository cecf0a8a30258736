package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// progressEvery is how often long hashing or storing reports itself.
const progressEvery = 2 * time.Second

// progressTicks paces logProgress: a channel of ticks and its stop. Tests
// replace it with a channel they drive.
var progressTicks = func() (<-chan time.Time, func()) {
	t := time.NewTicker(progressEvery)
	return t.C, t.Stop
}

// logProgress reports p at INFO every couple of seconds until stop is
// called, so that TF_LOG=info shows a long plan or apply is alive. A walk
// done sooner logs nothing. The clock here only paces log lines; it never
// touches a planned value.
func logProgress(ctx context.Context, what string, p *digest.Progress) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		ticks, stopTicks := progressTicks()
		defer stopTicks()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-ticks:
				bytes := p.Bytes.Load()
				secs := now.Sub(start).Seconds()
				tflog.Info(ctx, "immutable: hashing "+what, map[string]any{
					"files":       p.Files.Load(),
					"bytes":       bytes,
					"mib_per_sec": float64(bytes) / (1 << 20) / secs,
					"elapsed_sec": int(secs),
				})
			}
		}
	}()
	return func() { close(done); <-finished }
}
