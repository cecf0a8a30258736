package provider

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"

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
