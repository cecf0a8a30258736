package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// progressEvery is how often long hashing or storing reports itself.
var progressEvery = 2 * time.Second

// logProgress reports p at INFO every couple of seconds until stop is
// called, so that TF_LOG=info shows a long plan or apply is alive. A walk
// done sooner logs nothing. The clock here only paces log lines; it never
// touches a planned value.
func logProgress(ctx context.Context, what string, p *digest.Progress) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
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
