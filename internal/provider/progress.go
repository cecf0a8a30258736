package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
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

// logBuildOutput reports a running step's output at INFO, one log line per
// batch (about one a second), so that TF_LOG=info follows a build without
// a provider log call — each one JSON written to Terraform and parsed by
// it — for every line the step prints. The whole output is the build's
// stored log (log_digest).
func logBuildOutput(ctx context.Context, key string) func(actioncache.OutputBatch) {
	return func(b actioncache.OutputBatch) {
		msg := "build output"
		if b.More > 0 {
			msg += fmt.Sprintf(" (%d earlier lines not shown: a step that succeeds stores all of them as its log, log_digest; one that fails writes them here)", b.More)
		}
		if len(b.Lines) > 0 {
			msg += ":\n" + strings.Join(b.Lines, "\n")
		}
		tflog.Info(ctx, msg, map[string]any{"key": key, "lines": int64(len(b.Lines)) + b.More, "bytes": b.Bytes})
	}
}

// logFailedOutput writes the output of a step that failed (all of it, or
// its last actioncache.FailedOutput bytes) to the log at INFO, a piece of up to
// 8 KiB of lines at a time: a failed run stores no log, and its error
// shows only the last lines. Each line is written as usertext.Escape
// shows it: every byte is there, but an escape sequence (ESC [2J, a
// window title) or a byte that is not UTF-8 is written as \u001B or \xFF,
// so that reading the log in a terminal does not clear or retitle it.
func logFailedOutput(ctx context.Context, key string) func(piece []byte, offset, total int64) {
	return func(piece []byte, offset, total int64) {
		lines := strings.Split(string(piece), "\n")
		for i, l := range lines {
			lines[i] = usertext.Escape(l)
		}
		tflog.Info(ctx, fmt.Sprintf("the failed step's output, bytes %d to %d of %d:\n%s", offset, offset+int64(len(piece)), total, strings.Join(lines, "\n")),
			map[string]any{"key": key})
	}
}
