package provider

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// TestProgressIsLogged: long hashing reports files, bytes and rate at INFO
// on every tick while it runs, and stops listening when it ends. The test
// drives the ticks itself: an unbuffered send returns only once the
// reporter has taken the tick, so no sleep is needed.
func TestProgressIsLogged(t *testing.T) {
	ticks := make(chan time.Time)
	old := progressTicks
	progressTicks = func() (<-chan time.Time, func()) { return ticks, func() {} }
	defer func() { progressTicks = old }()
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	p := &digest.Progress{}
	p.Files.Store(1234)
	p.Bytes.Store(5 << 20)
	stop := logProgress(ctx, "/some/tree", p)
	start := time.Now()
	ticks <- start.Add(time.Second)
	ticks <- start.Add(2 * time.Second)
	stop() // returns once the reporter has ended: both lines are written
	logged := out.String()
	for _, want := range []string{`"@level":"info"`, "immutable: hashing /some/tree", `"files":1234`, `"bytes":5242880`, "mib_per_sec"} {
		if !strings.Contains(logged, want) {
			t.Fatalf("progress log lacks %s:\n%s", want, logged)
		}
	}
	if n := strings.Count(logged, "\n"); n != 2 {
		t.Fatalf("want a line per tick (2), got %d:\n%s", n, logged)
	}
	select {
	case ticks <- time.Now():
		t.Fatal("progress is still being reported after stop")
	default:
	}
}

// A batch of a build's output is one log line at INFO, however many lines
// it stands for.
func TestBuildOutputIsLoggedOncePerBatch(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	logBuildOutput(ctx, "sha256:k")(actioncache.OutputBatch{Lines: []string{"compiling a", "compiling b"}, More: 1000, Bytes: 20000})
	logged := out.String()
	for _, want := range []string{`"@level":"info"`, `build output (1000 earlier lines not shown`, `writes them here):\ncompiling a\ncompiling b"`, `"key":"sha256:k"`, `"lines":1002`, `"bytes":20000`} {
		if !strings.Contains(logged, want) {
			t.Fatalf("the log lacks %s:\n%s", want, logged)
		}
	}
	if n := strings.Count(logged, "\n"); n != 1 {
		t.Fatalf("want one log line, got %d:\n%s", n, logged)
	}
}

func TestFailedOutputIsLoggedWhole(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	logFailedOutput(ctx, "sha256:k")([]byte("error: x\nexit\n"), 100, 114)
	logged := out.String()
	if !strings.Contains(logged, `"@message":"the failed step's output, bytes 100 to 114 of 114:\nerror: x\nexit\n"`) || strings.Count(logged, "\n") != 1 {
		t.Fatalf("logged:\n%s", logged)
	}
}

// The failed output is logged escaped: a terminal reading the log is not
// cleared or retitled, and a byte that is not UTF-8 is not lost.
func TestFailedOutputIsLoggedEscaped(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	logFailedOutput(ctx, "sha256:k")([]byte("\x1b[31mred\x1b[0m\tok \xff\x1b[2J\n\x1b]0;pwned\x07\n"), 0, 33)
	logged := out.String()
	if !strings.Contains(logged, `of 33:\n\\u001B[31mred\\u001B[0m\tok \\xFF\\u001B[2J\n\\u001B]0;pwned\\u0007\n"`) || strings.Contains(logged, `\u001b`) {
		t.Fatalf("logged:\n%s", logged)
	}
	// The worst piece, 8 KiB of escape characters, stays one log entry
	// Terraform reads (a line of at most 64 KiB).
	out.Reset()
	logFailedOutput(ctx, "sha256:k")(bytes.Repeat([]byte{0x1b}, 8<<10), 0, 8<<10)
	if n := out.Len(); n > 63<<10 {
		t.Fatalf("the worst piece is a log line of %d bytes", n)
	}
}
