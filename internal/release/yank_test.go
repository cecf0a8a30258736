package release

import (
	"bytes"
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
	if _, err := SetYank(ctx, fb, "web", "1.0.0", true, "broken", AnySeq, now); !errors.As(err, new(*NotPublishedError)) {
		t.Fatalf("yank of an unpublished version: %v", err)
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: v, Artifacts: map[string]string{"v": v}}, now); err != nil {
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
		y, err := SetYank(ctx, fb, "web", "1.0.1", s.yanked, s.reason, AnySeq, now)
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
	if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: "2.0.0"}, now); err != nil {
		t.Fatal(err)
	}
	// Sixteen writers with different reasons: none is lost or overwritten;
	// every entry is whole, and the sequence has no gap.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := SetYank(ctx, fb, "web", "2.0.0", true, strings.Repeat("r", i+1), AnySeq, now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, _ := fb.List(ctx, "releases/web/yanks/2.0.0/")
	reasons := map[string]int{}
	for i, k := range keys {
		if k != yankKey("web", "2.0.0", i+1) {
			t.Fatalf("entry %d is %s", i, k)
		}
		y, err := getYank(ctx, fb, k, "web", "2.0.0", i+1)
		if err != nil {
			t.Fatal(err)
		}
		reasons[y.Reason]++
	}
	// Every reason differs: every writer's entry lands, once.
	if len(keys) != 16 || len(reasons) != 16 {
		t.Fatalf("%d entries, %d reasons", len(keys), len(reasons))
	}
}

func TestYankEntriesAreBoundedAndOwned(t *testing.T) {
	ctx := context.Background()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: v, Artifacts: map[string]string{"v": v}}, now); err != nil {
			t.Fatal(err)
		}
	}
	// The longest reason that encodes longest still reads back.
	worst := strings.Repeat(`"`, MaxReason)
	if _, err := SetYank(ctx, fb, "web", "1.0.0", true, worst, AnySeq, now); err != nil {
		t.Fatal(err)
	}
	if y, err := YankState(ctx, fb, "web", "1.0.0"); err != nil || y.Reason != worst {
		t.Fatalf("worst-case reason: %v", err)
	}
	for _, bad := range []string{"a\x01b", "two\nlines", "\x1b[2J", strings.Repeat("x", MaxReason+1)} {
		if _, err := SetYank(ctx, fb, "web", "1.0.1", true, bad, AnySeq, now); err == nil {
			t.Errorf("reason %q accepted", bad)
		}
	}
	// Expecting an entry someone else has moved past writes nothing.
	var moved *YankMovedError
	if _, err := SetYank(ctx, fb, "web", "1.0.0", false, "undo", 0, now); !errors.As(err, &moved) || moved.Now.Seq != 1 {
		t.Fatalf("stale expect: %v", err)
	}
	if y, err := SetYank(ctx, fb, "web", "1.0.0", false, "undo", 1, now); err != nil || y.Seq != 2 {
		t.Fatalf("expected entry: %+v %v", y, err)
	}
	// Keys past the ten digits the provider writes are refused, by both readers.
	if err := fb.Create(ctx, "releases/web/yanks/1.0.1/10000000000", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	var tampered *TamperedError
	if _, err := YankState(ctx, fb, "web", "1.0.1"); !errors.As(err, &tampered) {
		t.Fatalf("YankState: %v", err)
	}
	if _, err := Yanks(ctx, fb, "web"); !errors.As(err, &tampered) {
		t.Fatalf("Yanks: %v", err)
	}
}

// webStore is a local store where release "web" has one version per
// entry of sites, whose one artifact "site" is that entry's value; a and
// b are the contents of sites "a" and "b".
func webStore(t *testing.T, sites map[string]string) (fb *filestore.Backend, a, b Content) {
	t.Helper()
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for v, site := range sites {
		if _, err := WriteRecord(context.Background(), fb, &Record{Name: "web", Version: v, Artifacts: map[string]string{"site": site}}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return fb, Content{Name: "web", Artifacts: map[string]string{"site": "a"}}, Content{Name: "web", Artifacts: map[string]string{"site": "b"}}
}

func TestContentOfAYankedVersionIsNotAdopted(t *testing.T) {
	ctx := context.Background()
	fb, a, b := webStore(t, map[string]string{"1.0.0": "a", "1.0.1": "b"})
	now := time.Now()
	if _, err := SetYank(ctx, fb, "web", "1.0.0", true, "broken", AnySeq, now); err != nil {
		t.Fatal(err)
	}
	var yc *YankedContentError
	if _, err := PlanVersion(ctx, fb, a, "", "patch"); !errors.As(err, &yc) || yc.Version != "1.0.0" {
		t.Fatalf("automatic: %v", err)
	}
	if p, err := PlanVersion(ctx, fb, a, "1.0.0", "patch"); err != nil || p.Adopted == nil {
		t.Fatalf("explicit: %+v %v", p, err)
	}
	if p, err := PlanVersion(ctx, fb, b, "", "patch"); err != nil || p.Version != "1.0.1" {
		t.Fatalf("another content: %+v %v", p, err)
	}
}

// A version deleted by retention keeps its index entry and yank history:
// its content, if it was yanked, is not published again under a new
// number, and a yank or a move of it says that retention deleted it.
func TestCollectedVersions(t *testing.T) {
	ctx := context.Background()
	fb, a, b := webStore(t, map[string]string{"1.0.0": "a", "1.0.1": "b", "1.0.2": "c"})
	now := time.Now()
	if _, err := SetYank(ctx, fb, "web", "1.0.0", true, "broken", AnySeq, now); err != nil {
		t.Fatal(err)
	}
	// What the collector does to a version: tombstone, then the record.
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if err := fb.Create(ctx, CollectedKey("web", v), strings.NewReader("x\n")); err != nil {
			t.Fatal(err)
		}
		if err := fb.Delete(ctx, VersionKey("web", v)); err != nil {
			t.Fatal(err)
		}
	}
	var yc *YankedContentError
	if _, err := PlanVersion(ctx, fb, a, "", "patch"); !errors.As(err, &yc) || !yc.Collected || yc.Version != "1.0.0" ||
		!strings.Contains(err.Error(), "deleted by the store's retention") {
		t.Fatalf("content of a collected yanked version: %v", err)
	}
	// Content of a collected version that was not yanked gets a new one.
	if p, err := PlanVersion(ctx, fb, b, "", "patch"); err != nil || p.Version != "1.0.3" || p.Adopted != nil {
		t.Fatalf("content of a collected version: %+v %v", p, err)
	}
	var np *NotPublishedError
	if _, err := SetYank(ctx, fb, "web", "1.0.1", true, "late", AnySeq, now); !errors.As(err, &np) || !np.Collected {
		t.Fatalf("yank of a collected version: %v", err)
	}
	if _, err := SetYank(ctx, fb, "web", "9.9.9", true, "never", AnySeq, now); !errors.As(err, &np) || np.Collected {
		t.Fatalf("yank of a version never published: %v", err)
	}
	if err := CheckMove(ctx, fb, "web", "1.0.1", nil); !errors.As(err, &np) || !np.Collected ||
		!strings.Contains(err.Error(), "not published any more") {
		t.Fatalf("move to a collected version: %v", err)
	}
}

// A reason holding a character that does not show as itself is refused
// and nothing is written; one already in the store (an older provider
// accepted them, or a hand edit) still reads, and is shown escaped.
func TestYankReasonsShowAsWritten(t *testing.T) {
	ctx := context.Background()
	fb, _, b := webStore(t, map[string]string{"1.0.0": "a", "1.0.1": "b"})
	now := time.Now()
	_, err := SetYank(ctx, fb, "web", "1.0.0", true, "broken\u202E0.1.1 esu", AnySeq, now)
	if err == nil || !strings.Contains(err.Error(), "the reason holds U+202E RIGHT-TO-LEFT OVERRIDE at character 7") {
		t.Fatalf("got %v", err)
	}
	if keys, _ := fb.List(ctx, "releases/web/yanks/"); len(keys) != 0 {
		t.Fatalf("a refused yank wrote %v", keys)
	}
	planted := &Yank{Spec: YankSpec, Name: "web", Version: "1.0.1", Seq: 1, Yanked: true, Reason: "ok\u2028Error: fake \u202Eevil", At: "2026-01-02T03:04:05Z"}
	if err := fb.Create(ctx, yankKey("web", "1.0.1", 1), bytes.NewReader(planted.encode())); err != nil {
		t.Fatal(err)
	}
	y, err := YankState(ctx, fb, "web", "1.0.1")
	if err != nil || y.Reason != planted.Reason {
		t.Fatalf("the planted entry reads %+v, %v", y, err)
	}
	const shown = `"ok\u2028Error: fake \u202Eevil"`
	var yc *YankedContentError
	_, err = PlanVersion(ctx, fb, b, "", "patch")
	if !errors.As(err, &yc) || !strings.Contains(err.Error(), shown) {
		t.Errorf("PlanVersion: %v", err)
	}
	err = CheckMove(ctx, fb, "web", "1.0.1", nil)
	var ye *YankedError
	if !errors.As(err, &ye) || !strings.Contains(err.Error(), shown) {
		t.Errorf("CheckMove: %v", err)
	}
	_, err = SetYank(ctx, fb, "web", "1.0.1", false, "fixed", 0, now)
	var moved *YankMovedError
	if !errors.As(err, &moved) || !strings.Contains(err.Error(), shown) {
		t.Errorf("SetYank: %v", err)
	}
}
