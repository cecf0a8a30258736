package release

import (
	"errors"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func TestResolve(t *testing.T) {
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// No versions: no error from Resolve, a *NoVersionsError from Pick.
	r, err := Resolve(ctx, fb, "web", "", false)
	if err != nil || len(r.All) != 0 {
		t.Fatalf("empty release: %+v, %v", r, err)
	}
	if _, err := r.Pick(ctx, fb); !errors.As(err, new(*NoVersionsError)) {
		t.Fatalf("pick of an empty release: %v", err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"} {
		if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: v}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := SetYank(ctx, fb, "web", "1.2.0", true, "broken", AnySeq, now); err != nil {
		t.Fatal(err)
	}
	// 0.9.0: published, then deleted by retention (its tombstone).
	if err := fb.Create(ctx, CollectedKey("web", "0.9.0"), strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		selector  string
		pre       bool
		matched   int
		pick      string // "" : *NoMatchError
		skipped   int
		collected string
		latest    string // "" : nil
	}{
		{selector: "", matched: 3, pick: "1.1.0", latest: "1.1.0"}, // latest stable, yanked skipped
		{selector: "", pre: true, matched: 4, pick: "2.0.0-rc.1", latest: "2.0.0-rc.1"},
		{selector: "~> 1.1", matched: 2, pick: "1.1.0", latest: "1.1.0"},
		{selector: "1.2.0", matched: 1, pick: "1.2.0"}, // pinned: resolves, yanked
		{selector: "= 1.2.0", matched: 1, pick: "1.2.0"},
		{selector: ">= 1.2.0", matched: 1, skipped: 1},                                 // only a yanked one matches
		{selector: "2.0.0-rc.1", matched: 1, pick: "2.0.0-rc.1", latest: "2.0.0-rc.1"}, // exact: pre-release or not
		{selector: "3.0.0", matched: 0},
		{selector: "0.9.0", matched: 0, collected: "0.9.0"},
		// Pinned as Terraform users write it, spaces and all: still told
		// as deleted by retention.
		{selector: " = 0.9.0", matched: 0, collected: "0.9.0"},
		{selector: "= 0.9.0 ", matched: 0, collected: "0.9.0"},
		{selector: " 0.9.0", matched: 0, collected: "0.9.0"},
	} {
		r, err := Resolve(ctx, fb, "web", tc.selector, tc.pre)
		if err != nil {
			t.Fatalf("%q: %v", tc.selector, err)
		}
		if len(r.All) != 4 || len(r.Matched) != tc.matched {
			t.Errorf("%q: %d published, %d matched; want 4, %d", tc.selector, len(r.All), len(r.Matched), tc.matched)
		}
		got, err := r.Pick(ctx, fb)
		var nm *NoMatchError
		switch {
		case tc.pick != "" && (err != nil || got != tc.pick):
			t.Errorf("%q: picked %q, %v; want %s", tc.selector, got, err, tc.pick)
		case tc.pick == "" && (!errors.As(err, &nm) || nm.Skipped != tc.skipped || nm.Collected != tc.collected || len(nm.All) != 4):
			t.Errorf("%q: picked %q, %+v; want *NoMatchError skipping %d, collected %q", tc.selector, got, err, tc.skipped, tc.collected)
		}
		if l := r.Latest(); (l == nil) != (tc.latest == "") || l != nil && l.Original() != tc.latest {
			t.Errorf("%q: latest %v, want %q", tc.selector, l, tc.latest)
		}
	}

	r, err = Resolve(ctx, fb, "web", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Find("2.0.0-rc.1"); v == nil || v.Original() != "2.0.0-rc.1" {
		t.Errorf("find a pre-release: %v", v)
	}
	if r.Find("~> 1.0") != nil || r.Find("9.9.9") != nil {
		t.Error("find takes only a published version")
	}
	if y, ok := r.Yanked("1.2.0"); !ok || y.Reason != "broken" {
		t.Errorf("yank of 1.2.0: %+v %v", y, ok)
	}

	var ce *ConstraintError
	if _, err := Resolve(ctx, fb, "web", "~> nonsense", false); !errors.As(err, &ce) {
		t.Errorf("an invalid constraint: %v", err)
	}
}

// TestSelectReadsNoYanks: Select lists and matches versions without
// reading the yank history, so a reader that needs no yank state (a diff
// whose `to` is given) is not stopped by, and pays no listing for, the
// yanks; ReadYanks then reads them, and a yank entry edited by hand is
// refused there.
func TestSelectReadsNoYanks(t *testing.T) {
	fb, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: v}, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := fb.Create(ctx, yankKey("web", "1.1.0", 1), strings.NewReader("edited by hand\n")); err != nil {
		t.Fatal(err)
	}
	r, err := Select(ctx, fb, "web", "", false)
	if err != nil || len(r.All) != 2 || r.Yanks != nil {
		t.Fatalf("Select: %+v, %v; want both versions and no yank states", r, err)
	}
	if err := r.ReadYanks(ctx, fb); err == nil {
		t.Fatal("ReadYanks accepted a yank entry edited by hand")
	}
	if _, err := Resolve(ctx, fb, "web", "", false); err == nil {
		t.Fatal("Resolve accepted a yank entry edited by hand")
	}
}
