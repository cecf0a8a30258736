package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// requests counts every request a Backend serves.
type requests struct {
	store.Backend
	n atomic.Int64
}

func (c *requests) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	c.n.Add(1)
	return c.Backend.Open(ctx, key)
}

func (c *requests) Exists(ctx context.Context, key string) (bool, error) {
	c.n.Add(1)
	return c.Backend.Exists(ctx, key)
}

func (c *requests) List(ctx context.Context, prefix string) ([]string, error) {
	c.n.Add(1)
	return c.Backend.List(ctx, prefix)
}

func (c *requests) Create(ctx context.Context, key string, r io.Reader) error {
	c.n.Add(1)
	return c.Backend.Create(ctx, key, r)
}

// artifacts are n artifact digests.
func artifacts(n int) map[string]string {
	out := make(map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("a%03d", i)
		out[name] = digest.Bytes([]byte(name)).String()
	}
	return out
}

// publishSigned writes web@version with n artifacts, signed by s.
func publishSigned(t *testing.T, b store.Backend, s *signature.Signer, version string, n int) {
	t.Helper()
	if _, err := WriteRecord(ctx, b, &Record{Name: "web", Version: version, Artifacts: artifacts(n)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Countersign(ctx, b, s, "web", version); err != nil {
		t.Fatal(err)
	}
}

// TestTrustChannel: a channel's requirement refuses a version signed only
// by CI, naming the channel, the version, the key IDs required and found
// and the sign command; a countersignature by the channel's key lets it
// through; other channels take it; a channel key alone passes the general
// policy.
func TestTrustChannel(t *testing.T) {
	b := backend(t)
	ci, rm := testSigner(t, false), testSigner(t, true)
	publishSigned(t, b, ci, "1.0.0", 3)
	r, err := Get(ctx, b, "web", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	policy := func() *Trust {
		tr := NewTrust([]*signature.Verifier{ci.Public()}, true)
		tr.Channels = map[string][]*signature.Verifier{"prod": {rm.Public()}}
		return tr
	}
	tr := policy()
	if err := tr.CheckChannel(ctx, b, "staging", r); err != nil {
		t.Errorf("a channel without a requirement refused a CI-signed version: %v", err)
	}
	err = tr.CheckChannel(ctx, b, "prod", r)
	var ce *ChannelPolicyError
	if !errors.As(err, &ce) || len(ce.Found) != 1 || ce.Found[0] != ci.KeyID() || len(ce.Required) != 1 || ce.Required[0] != rm.KeyID() {
		t.Fatalf("prod took a version only CI signed: %v", err)
	}
	for _, want := range []string{"channel prod", "web@1.0.0", rm.KeyID(), ci.KeyID(), "terraform-provider-immutable sign --key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if _, err := Countersign(ctx, b, rm, "web", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := policy().CheckChannel(ctx, b, "prod", r); err != nil {
		t.Errorf("prod refused a version the release manager countersigned: %v", err)
	}

	// Signed by the channel's key alone: the general policy trusts it.
	publishSigned(t, b, rm, "2.0.0", 0)
	r2, err := Get(ctx, b, "web", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := policy().CheckChannel(ctx, b, "prod", r2); err != nil {
		t.Errorf("a version the release manager alone signed: %v", err)
	}
	only := NewTrust(nil, false)
	only.Channels = map[string][]*signature.Verifier{"prod": {rm.Public()}}
	if err := only.CheckRecord(ctx, b, r2); err != nil {
		t.Errorf("a channel-only policy refused its own key's signature in general: %v", err)
	}
}

// TestTrustCost: reading a version and checking it for a channel under a
// policy costs the same few extra requests (one list of its signatures,
// one read per signature) whether it has 1 artifact or 100: nothing per
// artifact, and the channel check reads nothing the general check did not.
func TestTrustCost(t *testing.T) {
	ci, rm := testSigner(t, false), testSigner(t, true)
	extra := map[int]int64{}
	for _, n := range []int{1, 100} {
		c := &requests{Backend: backend(t)}
		version := fmt.Sprintf("%d.0.0", n)
		publishSigned(t, c, ci, version, n)
		if _, err := Countersign(ctx, c, rm, "web", version); err != nil {
			t.Fatal(err)
		}
		read := func(tr *Trust) int64 {
			before := c.n.Load()
			r, err := tr.Get(ctx, c, "web", version)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // several readers in one operation
				if err := tr.CheckChannel(ctx, c, "prod", r); err != nil {
					t.Fatal(err)
				}
				if err := tr.CheckRecord(ctx, c, r); err != nil {
					t.Fatal(err)
				}
			}
			return c.n.Load() - before
		}
		none := read(nil)
		tr := NewTrust([]*signature.Verifier{ci.Public()}, true)
		tr.Channels = map[string][]*signature.Verifier{"prod": {rm.Public()}}
		extra[n] = read(tr) - none
		t.Logf("%d artifacts: %d requests without a policy, %d extra with one", n, none, extra[n])
	}
	// One list of the signatures, one read of each of the two.
	if extra[1] != 3 || extra[100] != 3 {
		t.Errorf("extra requests under a policy: %d with 1 artifact, %d with 100; want 3 each", extra[1], extra[100])
	}
}

// TestMoveNamesItsRecord: a move signed through MoveTo names, as its
// statement's second subject, the record of the version it moves to. When
// that record is later replaced by another record under the same version,
// validly signed by another trusted key, the move no longer vouches for
// the version: the channel check (CheckMoveRecord) refuses it, and the
// move does not open a gate. A move signed without that subject (before
// moves named it) is judged as before.
func TestMoveNamesItsRecord(t *testing.T) {
	fb := backend(t)
	st := store.New(fb)
	ci, rm := testSigner(t, false), testSigner(t, true)
	publishSigned(t, fb, ci, "1.0.0", 2)
	m, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "staging", To: "1.0.0", Seq: -1, Reason: "tests passed"}, now, SignWith(ci))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Get(ctx, fb, "web", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	subjects := signedBy(t, fb, moveKey("web", "staging", 1), ci)
	if len(subjects) != 2 || subjects[1] != (signature.Subject{Name: VersionKey("web", "1.0.0"), Digest: a.StoredDigest()}) {
		t.Fatalf("the move's subjects are %v, want the move, then %s with sha256 %s", subjects, VersionKey("web", "1.0.0"), a.StoredDigest().Hex())
	}
	policy := func() *Trust { return NewTrust([]*signature.Verifier{ci.Public(), rm.Public()}, true) }
	if err := policy().CheckMoveRecord(ctx, fb, m, a); err != nil {
		t.Fatalf("the move and the record it approved: %v", err)
	}
	if err := CheckMove(ctx, fb, "web", "1.0.0", []string{"staging"}, policy()); err != nil {
		t.Fatalf("the gate, record unchanged: %v", err)
	}

	// Someone with write access replaces the record by B, other content
	// under the same version, signed by another trusted key.
	if err := fb.Delete(ctx, VersionKey("web", "1.0.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteRecord(ctx, fb, &Record{Name: "web", Version: "1.0.0", Artifacts: artifacts(3)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Countersign(ctx, fb, rm, "web", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	bRec, err := policy().Get(ctx, fb, "web", "1.0.0")
	if err != nil {
		t.Fatalf("record B, validly signed: %v", err)
	}
	var mismatch *MoveRecordError
	err = policy().CheckMoveRecord(ctx, fb, m, bRec)
	if !errors.As(err, &mismatch) || mismatch.Signed != a.StoredDigest() || mismatch.Now != bRec.StoredDigest() ||
		!strings.Contains(err.Error(), "was signed (by key "+ci.KeyID()) {
		t.Fatalf("the move and record B: %v, want a *MoveRecordError naming A's and B's digests", err)
	}
	var gate *GateError
	if err := CheckMove(ctx, fb, "web", "1.0.0", []string{"staging"}, policy()); !errors.As(err, &gate) {
		t.Fatalf("the gate with record B: %v, want *GateError", err)
	}

	// A move signed before moves named their record: judged as before.
	old, err := WriteMove(ctx, fb, "web", "prod", 0, "", "1.0.0", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignRecord(ctx, fb, ci, moveKey("web", "prod", 1), old.encode(), KindMove, nil); err != nil {
		t.Fatal(err)
	}
	if err := policy().CheckMoveRecord(ctx, fb, old, bRec); err != nil {
		t.Fatalf("a move naming no record: %v", err)
	}
}

// TestMoveAfterUntrusted: a move requested After an untrusted move is
// written after it whatever it names, though the caller does not know
// where it ends (a plain request from nowhere is refused), starts where
// that move ends (the link History checks), is signed, and is refused
// when the channel is no longer at that move.
func TestMoveAfterUntrusted(t *testing.T) {
	fb := backend(t)
	st := store.New(fb)
	ci := testSigner(t, false)
	publishSigned(t, fb, ci, "1.0.0", 1)
	if _, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1}, now, SignWith(ci)); err != nil {
		t.Fatal(err)
	}
	// Someone writes move 2, unsigned, to where the channel is.
	if _, err := WriteMove(ctx, fb, "web", "prod", 1, "1.0.0", "1.0.0", "", now); err != nil {
		t.Fatal(err)
	}
	policy := NewTrust([]*signature.Verifier{ci.Public()}, true)
	req := MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: 2, Trust: policy}
	var moved *MovedError
	if _, err := MoveTo(ctx, st, req, now, SignWith(ci)); !errors.As(err, &moved) {
		t.Fatalf("a plain move after move 2 from nowhere: %v, want a *MovedError", err)
	}
	req.After, req.From = true, "ignored"
	m, err := MoveTo(ctx, st, req, now, SignWith(ci))
	if err != nil || m.Seq != 3 || m.From != "1.0.0" {
		t.Fatalf("the move after move 2: %+v, %v; want move 3 from 1.0.0", m, err)
	}
	if err := NewTrust([]*signature.Verifier{ci.Public()}, true).CheckMove(ctx, fb, m); err != nil {
		t.Fatalf("move 3 is not signed: %v", err)
	}
	if _, err := History(ctx, fb, "web", "prod", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := MoveTo(ctx, st, req, now, SignWith(ci)); !errors.As(err, &moved) || moved.Now.Seq != 3 {
		t.Fatalf("After move 2 again, the channel at move 3: %v, want a *MovedError", err)
	}
}

// TestMovedErrorShowsStoreText: what a MovedError repeats of the move
// found (read from the store: anyone with write access wrote it) is
// escaped, so that it cannot change how the message reads.
func TestMovedErrorShowsStoreText(t *testing.T) {
	evil := "1.0.0\u202e\u001b[2J\nevil"
	for _, e := range []*MovedError{
		{Release: "web", Channel: "prod", Now: &Move{Seq: 2, To: evil, At: evil}},
		{Release: "web", Channel: "prod", Now: &Move{Seq: 2, To: evil, At: evil, Reason: evil}, Reason: "x", Foreign: true},
	} {
		msg := e.Error()
		if strings.ContainsAny(msg, "\u202e\u001b\n") || !strings.Contains(msg, `1.0.0\u202E\u001B[2J\nevil`) {
			t.Errorf("message %q: want the move's text escaped", msg)
		}
	}
	g := (&GateError{Release: "web", Version: "1.0.0", Gate: "staging", Seen: []string{evil}}).Error()
	if strings.ContainsAny(g, "\u202e\u001b\n") {
		t.Errorf("gate message %q: want the move's text escaped", g)
	}
}
