package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func TestChannelMovesAndGates(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: v}, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckMove(ctx, fb, "web", "9.9.9", nil); !errors.As(err, new(*NotPublishedError)) {
		t.Fatalf("unpublished: %v", err)
	}
	if _, err := SetYank(ctx, fb, "web", "1.2.0", true, "broken", AnySeq, now); err != nil {
		t.Fatal(err)
	}
	if err := CheckMove(ctx, fb, "web", "1.2.0", nil); !errors.As(err, new(*YankedError)) {
		t.Fatalf("yanked: %v", err)
	}
	// prod takes only what staging had.
	var gate *GateError
	if err := CheckMove(ctx, fb, "web", "1.1.0", []string{"staging"}); !errors.As(err, &gate) || !strings.Contains(err.Error(), "never pointed") {
		t.Fatalf("gate on an empty staging: %v", err)
	}
	if _, err := WriteMove(ctx, fb, "web", "staging", 0, "", "1.0.0", "", now); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteMove(ctx, fb, "web", "staging", 1, "1.0.0", "1.1.0", "tests passed", now); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteMove(ctx, fb, "web", "staging", 2, "1.1.0", "1.0.0", "rollback", now); err != nil {
		t.Fatal(err)
	}
	// 1.1.0 was on staging, though staging has left it.
	if err := CheckMove(ctx, fb, "web", "1.1.0", []string{"staging"}); err != nil {
		t.Fatalf("gate after staging had it: %v", err)
	}
	hist, err := History(ctx, fb, "web", "staging", 2)
	if err != nil || len(hist) != 2 || hist[0].To != "1.1.0" || hist[1].To != "1.0.0" || hist[1].Reason != "rollback" {
		t.Fatalf("history %+v %v", hist, err)
	}
	cur, err := Current(ctx, fb, "web", "staging")
	if err != nil || cur.Seq != 3 || cur.From != "1.1.0" {
		t.Fatalf("current %+v %v", cur, err)
	}
	// A move from a position the channel has left writes nothing.
	var moved *MovedError
	if _, err := WriteMove(ctx, fb, "web", "staging", 1, "1.0.0", "1.1.0", "", now); !errors.As(err, &moved) || moved.Now.Seq != 3 {
		t.Fatalf("stale move: %v", err)
	}
	// A hand-edited entry is refused.
	if err := fb.Create(ctx, moveKey("web", "staging", 4), strings.NewReader(`{"spec":"immutable-channel-v1"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	var tampered *TamperedError
	if _, err := Current(ctx, fb, "web", "staging"); !errors.As(err, &tampered) {
		t.Fatalf("tampered: %v", err)
	}
}

func TestConcurrentMovesFromOnePositionOneWins(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		fb, err = filestore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var wins, lost atomic.Int64
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				_, err := WriteMove(ctx, fb, "web", "prod", 0, "", "1.0."+string(rune('0'+i%10)), "", time.Now())
				var moved *MovedError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &moved):
					lost.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || lost.Load() != 15 {
			t.Fatalf("%d moves won, %d lost; want exactly one winner", wins.Load(), lost.Load())
		}
		if ns, _ := seqs(ctx, fb, "web", "prod"); len(ns) != 1 {
			t.Fatalf("entries %v", ns)
		}
	}
}

func TestChannelHistoryIsWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fb, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, v := range []string{"1.0.0", "1.1.0", "1.0.0"} {
		from := ""
		if i > 0 {
			from = []string{"1.0.0", "1.1.0"}[i-1]
		}
		if _, err := WriteMove(ctx, fb, "web", "prod", i, from, v, "", now); err != nil {
			t.Fatal(err)
		}
	}
	// A move written by hand that does not start where the last ended.
	bad := &Move{Spec: ChannelSpec, Release: "web", Channel: "prod", Seq: 4, From: "9.9.9", To: "1.1.0", At: now.UTC().Format(time.RFC3339)}
	if err := fb.Create(ctx, moveKey("web", "prod", 4), strings.NewReader(string(bad.encode()))); err != nil {
		t.Fatal(err)
	}
	var tampered *TamperedError
	if _, err := Current(ctx, fb, "web", "prod"); !errors.As(err, &tampered) {
		t.Fatalf("a move from elsewhere: %v", err)
	}
	// A deleted middle entry.
	p := filepath.Join(dir, filepath.FromSlash(moveKey("web", "prod", 2)))
	if err := os.Chmod(filepath.Dir(p), 0o755); err == nil {
		_ = os.Chmod(p, 0o644)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := History(ctx, fb, "web", "prod", 0); !errors.As(err, &tampered) || !strings.Contains(err.Error(), "0000000002") {
		t.Fatalf("a gap: %v", err)
	}
}

// A move's reason holding a line separator is refused; nothing is written.
func TestMoveReasonShowsAsWritten(t *testing.T) {
	ctx := context.Background()
	fb, _, _ := webStore(t, map[string]string{"1.0.0": "a"})
	_, err := WriteMove(ctx, fb, "web", "prod", 0, "", "1.0.0", "ok\u2028Error: fake", time.Now())
	if err == nil || !strings.Contains(err.Error(), "the reason holds U+2028 LINE SEPARATOR at character 3, a line break") {
		t.Fatalf("got %v", err)
	}
	if keys, _ := fb.List(ctx, "channels/"); len(keys) != 0 {
		t.Fatalf("a refused move wrote %v", keys)
	}
}
