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
// while it runs, and stops reporting when it ends.
func TestProgressIsLogged(t *testing.T) {
	old := progressEvery
	progressEvery = 20 * time.Millisecond
	defer func() { progressEvery = old }()
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	p := &digest.Progress{}
	p.Files.Store(1234)
	p.Bytes.Store(5 << 20)
	stop := logProgress(ctx, "/some/tree", p)
	time.Sleep(70 * time.Millisecond)
	stop()
	logged := out.String()
	for _, want := range []string{`"@level":"info"`, "immutable: hashing /some/tree", `"files":1234`, `"bytes":5242880`, "mib_per_sec"} {
		if !strings.Contains(logged, want) {
			t.Fatalf("progress log lacks %s:\n%s", want, logged)
		}
	}
	lines := strings.Count(logged, "\n")
	time.Sleep(70 * time.Millisecond)
	if strings.Count(out.String(), "\n") != lines {
		t.Fatal("progress is still logged after stop")
	}
}
