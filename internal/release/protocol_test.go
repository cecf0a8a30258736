package release

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// leases returns the keys named by every lease in st that holds a
// release's key (PutBlob holds its blob under a lease of its own).
func leases(t *testing.T, st *store.Store) [][]string {
	t.Helper()
	keys, err := st.Backend().List(ctx, store.LeasesPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, k := range keys {
		held, err := store.ReadKeys(ctx, st.Backend(), k, false)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(held, func(k string) bool { return strings.HasPrefix(k, "releases/") }) {
			out = append(out, held)
		}
	}
	return out
}

func releaseKeys(t *testing.T, st *store.Store) []string {
	t.Helper()
	keys, err := st.Backend().List(ctx, "releases/")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPublishProtocol: Publish holds the artifacts and the version, checks
// that the artifacts are stored, and writes; a publish that stops before
// its write leaves neither a record nor a lease, one that wrote keeps its
// lease.
func TestPublishProtocol(t *testing.T) {
	st := store.New(backend(t))
	rec := func(version string) *Record {
		return &Record{Name: "web", Version: version, Artifacts: map[string]string{"site": a1, "api": a2}}
	}

	// Neither artifact stored: the first in name order is named.
	_, err := Publish(ctx, st, rec("1.0.0"), now)
	var missing *ArtifactMissingError
	if !errors.As(err, &missing) || missing.Artifact != "api" || missing.Digest.String() != a2 || missing.Release != "web" {
		t.Fatalf("publishing unstored artifacts: %v, want *ArtifactMissingError for api", err)
	}
	if keys, ls := releaseKeys(t, st), leases(t, st); len(keys) != 0 || len(ls) != 0 {
		t.Fatalf("a refused publish left records %v and leases %v", keys, ls)
	}

	for _, s := range []string{"one", "two"} {
		if _, err := st.PutBlob(ctx, digest.Bytes([]byte(s)), strings.NewReader(s)); err != nil {
			t.Fatal(err)
		}
	}

	// Interrupted at the last moment: nothing written, the lease dropped,
	// the hook's error returned as an *InterruptedError.
	stop := errors.New("stop")
	ran := false
	_, err = Publish(ctx, st, rec("1.0.0"), now, BeforeWrite(func(context.Context) error {
		ran = true
		if ls := leases(t, st); len(ls) != 1 {
			t.Errorf("before the write, %d leases are held, want 1", len(ls))
		}
		return stop
	}))
	if !ran || !errors.Is(err, stop) || !errors.As(err, new(*InterruptedError)) {
		t.Fatalf("interrupted publish: ran %v, err %v", ran, err)
	}
	if keys, ls := releaseKeys(t, st), leases(t, st); len(keys) != 0 || len(ls) != 0 {
		t.Fatalf("an interrupted publish left records %v and leases %v", keys, ls)
	}

	// Published: the lease names both artifacts' keys and the version, and
	// stays (a collector must still see it).
	if _, err := Publish(ctx, st, rec("1.0.0"), now); err != nil {
		t.Fatal(err)
	}
	ls := leases(t, st)
	want := append(store.HeldKeys(a2, a1), VersionKey("web", "1.0.0"))
	slices.Sort(want)
	if len(ls) != 1 || !slices.Equal(ls[0], want) {
		t.Fatalf("leases after publishing: %v, want one holding %v", ls, want)
	}

	// Refused by the write (other content under the same version): its
	// lease is dropped, the earlier one stays.
	other := rec("1.0.0")
	other.Metadata = map[string]string{"env": "other"}
	if _, err := Publish(ctx, st, other, now); !errors.As(err, new(*ConflictError)) {
		t.Fatalf("publishing other content under 1.0.0: %v, want *ConflictError", err)
	}
	if ls := leases(t, st); len(ls) != 1 {
		t.Fatalf("a refused write left %d leases, want the 1 of the earlier publish", len(ls))
	}

	// A digest that does not parse is named, not looked up.
	bad := rec("1.0.1")
	bad.Artifacts["site"] = "sha256:nope"
	var badSum *ArtifactDigestError
	if _, err := Publish(ctx, st, bad, now); !errors.As(err, &badSum) || badSum.Artifact != "site" {
		t.Fatalf("publishing a bad digest: %v, want *ArtifactDigestError for site", err)
	}
}

// TestMoveToProtocol: MoveTo holds the version it moves to, checks the
// move and the channel's position, and writes; a move that stops before
// its write leaves neither a move nor a lease, one that wrote keeps its
// lease.
func TestMoveToProtocol(t *testing.T) {
	st := store.New(backend(t))
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if _, err := WriteRecord(ctx, st.Backend(), &Record{Name: "web", Version: v}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := SetYank(ctx, st.Backend(), "web", "1.2.0", true, "broken", AnySeq, now); err != nil {
		t.Fatal(err)
	}
	moves := func() int {
		keys, err := st.Backend().List(ctx, "channels/")
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	refused := func(what string, err error, ok bool) {
		t.Helper()
		if !ok {
			t.Fatalf("%s: %v", what, err)
		}
		if n, ls := moves(), leases(t, st); n != 1 || len(ls) != 1 {
			t.Fatalf("%s left %d moves and %d leases, want the 1 and 1 of the first move", what, n, len(ls))
		}
	}

	// A new channel: written, its lease holding the version and kept.
	m, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1}, now)
	if err != nil || m.Seq != 1 {
		t.Fatalf("first move: %+v, %v", m, err)
	}
	if ls := leases(t, st); len(ls) != 1 || !slices.Equal(ls[0], []string{VersionKey("web", "1.0.0")}) {
		t.Fatalf("leases after the first move: %v", ls)
	}
	// The same move again (an apply that failed to save its state): found,
	// nothing written.
	if again, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1}, now); err != nil || again.Seq != 1 {
		t.Fatalf("the same move again: %+v, %v", again, err)
	}
	if ls := leases(t, st); moves() != 1 || len(ls) != 2 {
		t.Fatalf("the same move again: %d moves, %d leases; want 1, 2 (kept as the first apply's)", moves(), len(ls))
	}
	// Clean up that second lease so that the counts below are about one
	// move's lease.
	d, ok := st.Backend().(store.Deleter)
	if !ok {
		t.Fatal("a file store can delete")
	}
	keys, _ := st.Backend().List(ctx, store.LeasesPrefix)
	for _, k := range keys {
		if held, _ := store.ReadKeys(ctx, st.Backend(), k, false); slices.Contains(held, VersionKey("web", "1.0.0")) {
			if err := d.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			break
		}
	}

	_, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.2.0", From: "1.0.0", Seq: 1}, now)
	refused("a move to a yanked version", err, errors.As(err, new(*YankedError)))
	_, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.1.0", From: "1.0.0", Seq: 1, Requires: []string{"staging"}}, now)
	refused("a move refused by a gate", err, errors.As(err, new(*GateError)))
	_, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.1.0", Seq: -1}, now)
	refused("a new channel that exists", err, errors.As(err, new(*MovedError)))
	_, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.1.0", From: "1.1.0", Seq: 1}, now)
	refused("a move from a position the channel never had", err, errors.As(err, new(*MovedError)))
	stop := errors.New("stop")
	_, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.1.0", From: "1.0.0", Seq: 1}, now,
		BeforeWrite(func(context.Context) error { return stop }))
	refused("an interrupted move", err, errors.Is(err, stop) && errors.As(err, new(*InterruptedError)))

	m, err = MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.1.0", From: "1.0.0", Seq: 1, Reason: "ok"}, now)
	if err != nil || m.Seq != 2 || m.From != "1.0.0" || m.Reason != "ok" {
		t.Fatalf("second move: %+v, %v", m, err)
	}
	if ls := leases(t, st); len(ls) != 2 {
		t.Fatalf("after the second move: %d leases, want 2", len(ls))
	}
}

// untouched fails unless st holds nothing at all: no record, no move, no
// lease, and not the store's identity, which the first lease of a new
// store writes.
func untouched(t *testing.T, st *store.Store, what string) {
	t.Helper()
	keys, err := st.Backend().List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("%s wrote %v, want nothing", what, keys)
	}
}

// TestPublishValidatesFirst: input Publish refuses is refused before its
// lease is taken, as the input error it is (not a *StepError, which
// would say the store failed), and nothing is written: no lease, no
// store identity.
func TestPublishValidatesFirst(t *testing.T) {
	huge := strings.Repeat("x", MaxRecordSize)
	for _, tc := range []struct {
		what  string
		r     Record
		input Input
		key   string
		check func(error) bool // for the errors that are not *InvalidError
	}{
		{what: "a bad name", r: Record{Name: "Web", Version: "1.0.0"}, input: InputRelease},
		{what: "a bad version", r: Record{Name: "web", Version: "v1.0.0"}, input: InputVersion},
		{what: "a bad artifact name", r: Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"a\u202eb": a1}}, input: InputArtifact, key: "a\u202eb"},
		{what: "a bad metadata key", r: Record{Name: "web", Version: "1.0.0", Metadata: map[string]string{"k\n": "v"}}, input: InputMetadata, key: "k\n"},
		{what: "a bad digest", r: Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"site": "sha256:" + strings.Repeat("z", 64)}},
			check: func(err error) bool { var e *ArtifactDigestError; return errors.As(err, &e) && e.Artifact == "site" }},
		{what: "a record too large", r: Record{Name: "web", Version: "1.0.0", Metadata: map[string]string{"big": huge}},
			check: func(err error) bool { var e *TooLargeError; return errors.As(err, &e) && e.Attribute() == "metadata" }},
	} {
		st := store.New(backend(t))
		r := tc.r
		held := false
		_, err := Publish(ctx, st, &r, now, BeforeWrite(func(context.Context) error { held = true; return nil }))
		if step := (*StepError)(nil); errors.As(err, &step) {
			t.Errorf("%s: %v is a *StepError at step %d: reported as a failure of the store", tc.what, err, step.Step)
		}
		var inv *InvalidError
		switch {
		case tc.check != nil && !tc.check(err):
			t.Errorf("%s: %v (%T)", tc.what, err, err)
		case tc.check == nil && (!errors.As(err, &inv) || inv.Input != tc.input || inv.Key != tc.key):
			t.Errorf("%s: %#v, want *InvalidError for input %d, key %q", tc.what, err, tc.input, tc.key)
		}
		if held {
			t.Errorf("%s: reached its write", tc.what)
		}
		untouched(t, st, tc.what)
	}
}

// TestMoveToValidatesFirst: as TestPublishValidatesFirst, for MoveTo.
func TestMoveToValidatesFirst(t *testing.T) {
	good := MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1, Reason: "ok", Requires: []string{"staging"}}
	for _, tc := range []struct {
		what  string
		edit  func(*MoveRequest)
		input Input
		key   string
	}{
		{"a bad release", func(m *MoveRequest) { m.Release = "../web" }, InputRelease, ""},
		{"a bad channel", func(m *MoveRequest) { m.Channel = "Prod" }, InputChannel, ""},
		{"a bad version", func(m *MoveRequest) { m.To = "1.0" }, InputVersion, ""},
		{"a bad reason", func(m *MoveRequest) { m.Reason = "roll\u202eback" }, InputReason, ""},
		{"a reason too long", func(m *MoveRequest) { m.Reason = strings.Repeat("r", MaxReason+1) }, InputReason, ""},
		{"a bad gate", func(m *MoveRequest) { m.Requires = []string{"staging", "QA"} }, InputRequires, "QA"},
	} {
		st := store.New(backend(t))
		req := good
		tc.edit(&req)
		_, err := MoveTo(ctx, st, req, now)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Input != tc.input || inv.Key != tc.key || errors.As(err, new(*StepError)) {
			t.Errorf("%s: %#v, want *InvalidError for input %d, key %q (and no *StepError)", tc.what, err, tc.input, tc.key)
		}
		untouched(t, st, tc.what)
	}
}

// TestMoveToCheckErrors: a failure of the store while MoveTo checks is a
// *StepError at StepCheck, as Publish's; a refused move stays the
// refusal it is.
func TestMoveToCheckErrors(t *testing.T) {
	fb := backend(t)
	st := store.New(fb)
	if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: "1.0.0"}, now); err != nil {
		t.Fatal(err)
	}
	req := MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1}

	// An altered move in the channel (read by Current) and in a gate (read
	// by CheckMove): reading failed, so StepCheck, and still the
	// *TamperedError it is.
	for _, ch := range []string{"prod", "staging"} {
		if err := fb.Create(ctx, moveKey("web", ch, 1), strings.NewReader("not json")); err != nil {
			t.Fatal(err)
		}
		r := req
		if ch == "staging" {
			r.Channel, r.Requires = "canary", []string{"staging"}
		}
		_, err := MoveTo(ctx, st, r, now)
		var step *StepError
		if !errors.As(err, &step) || step.Step != StepCheck || !errors.As(err, new(*TamperedError)) {
			t.Errorf("an altered move in %s: %#v, want a *StepError at StepCheck wrapping a *TamperedError", ch, err)
		}
	}

	// Refusals stay as they are.
	r := req
	r.To = "2.0.0"
	if _, err := MoveTo(ctx, st, r, now); !errors.As(err, new(*NotPublishedError)) || errors.As(err, new(*StepError)) {
		t.Errorf("a move to a version never published: %#v, want a *NotPublishedError alone", err)
	}
}
