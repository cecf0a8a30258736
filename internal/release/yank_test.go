package release

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func TestYankHistory(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	if _, err := SetYank(ctx, fb, "web", "1.0.0", true, "broken", now); !errors.As(err, new(*NotPublishedError)) {
		t.Fatalf("yank of an unpublished version: %v", err)
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := Publish(ctx, fb, &Record{Name: "web", Version: v, Artifacts: map[string]string{"v": v}}, now); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		yanked bool
		reason string
		seq    int
	}{
		{true, "broken css", 1},
		{true, "broken css", 1}, // same state: no new entry
		{true, "broken css and js", 2},
		{false, "fixed upstream", 3},
		{false, "fixed upstream", 3},
	}
	for _, s := range steps {
		y, err := SetYank(ctx, fb, "web", "1.0.1", s.yanked, s.reason, now)
		if err != nil || y.Seq != s.seq || y.Yanked != s.yanked {
			t.Fatalf("%+v: got %+v %v", s, y, err)
		}
	}
	keys, _ := fb.List(ctx, "releases/web/yanks/")
	if len(keys) != 3 {
		t.Fatalf("entries %v: history is written once per change", keys)
	}
	all, err := Yanks(ctx, fb, "web")
	if err != nil || len(all) != 1 || all["1.0.1"].Yanked || all["1.0.1"].Reason != "fixed upstream" {
		t.Fatalf("yanks: %+v %v", all, err)
	}
	// A hand-edited entry is refused, not trusted.
	if err := fb.Create(ctx, yankKey("web", "1.0.0", 1), strings.NewReader(`{"spec":"immutable-yank-v1","name":"web","version":"1.0.1","seq":1,"yanked":true,"reason":"x","at":"y"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	var tampered *TamperedError
	if _, err := Yanks(ctx, fb, "web"); !errors.As(err, &tampered) {
		t.Fatalf("a misplaced entry: %v", err)
	}
}

func TestConcurrentYanksWriteOneEntryEach(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := Publish(ctx, fb, &Record{Name: "web", Version: "2.0.0"}, now); err != nil {
		t.Fatal(err)
	}
	// Sixteen writers with different reasons: none is lost or overwritten;
	// every entry is whole, and the sequence has no gap.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := SetYank(ctx, fb, "web", "2.0.0", true, strings.Repeat("r", i+1), now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, _ := fb.List(ctx, "releases/web/yanks/2.0.0/")
	for i, k := range keys {
		if k != yankKey("web", "2.0.0", i+1) {
			t.Fatalf("entry %d is %s", i, k)
		}
		if _, err := getYank(ctx, fb, k, "web", "2.0.0", i+1); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) < 1 || len(keys) > 16 {
		t.Fatalf("%d entries", len(keys))
	}
}
