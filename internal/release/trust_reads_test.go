package release

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestTrustYanks: under a policy, the yank entries that decide what a
// selector resolves to are checked — a yank above the pick (it skipped
// that version), the pick's own un-yank — and an untrusted one is
// refused, naming the entry, not ignored; a trusted one decides as
// before; an entry below the pick decides nothing and is not read. A
// channel move to a version whose entry in effect is an untrusted un-yank
// is refused.
func TestTrustYanks(t *testing.T) {
	b := backend(t)
	ci, rogue := testSigner(t, false), testSigner(t, true)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		publishSigned(t, b, ci, v, 1)
	}
	tr := NewTrust([]*signature.Verifier{ci.Public()}, true)
	yank := func(v string, yanked bool, s *signature.Signer) string {
		t.Helper()
		var opts []Option
		if s != nil {
			opts = append(opts, SignWith(s))
		}
		y, err := SetYank(ctx, b, "web", v, yanked, "broken", AnySeq, now, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return store.YankKey("web", v, y.Seq)
	}
	pick := func(tr *Trust) (string, error) {
		t.Helper()
		r, err := Resolve(ctx, b, "web", "~> 1.0", false)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := r.Pick(ctx, b)
		return v, r.CheckYanks(ctx, b, tr, v)
	}

	yank("1.0.0", true, rogue) // below the pick: decides nothing
	yank("1.3.0", true, ci)    // trusted: skipped as before
	if v, err := pick(tr); err != nil || v != "1.2.0" {
		t.Fatalf("a trusted yank above the pick: %s, %v; want 1.2.0", v, err)
	}

	// A rogue yank of 1.2.0 would move the answer down to 1.1.0.
	rogueKey := yank("1.2.0", true, rogue)
	v, err := pick(tr)
	var ue *UntrustedRecordError
	if !errors.As(err, &ue) || ue.Key != rogueKey || !strings.Contains(err.Error(), "not ignored") {
		t.Fatalf("an untrusted yank above the pick (%s): %v; want it refused naming %s", v, err, rogueKey)
	}
	if v, err := pick(nil); err != nil || v != "1.1.0" {
		t.Errorf("without a policy: %s, %v; want 1.1.0", v, err)
	}

	// An unsigned un-yank of 1.3.0 would bring it back.
	unyank := yank("1.3.0", false, nil)
	yank("1.2.0", true, ci) // 1.2.0's rogue yank now followed by… the same state: signed in place
	if _, err := pick(NewTrust([]*signature.Verifier{ci.Public()}, true)); !errors.As(err, &ue) || ue.Key != unyank || !ue.Unsigned {
		t.Fatalf("an unsigned un-yank of the pick: %v; want it refused naming %s", err, unyank)
	}
	if err := CheckMove(ctx, b, "web", "1.3.0", nil, NewTrust([]*signature.Verifier{ci.Public()}, true)); !errors.As(err, &ue) || ue.Key != unyank {
		t.Errorf("a move to a version un-yanked unsigned: %v; want the un-yank refused", err)
	}
	if err := CheckMove(ctx, b, "web", "1.3.0", nil); err != nil {
		t.Errorf("without a policy the move is allowed: %v", err)
	}
}

// TestTrustRecordsCost: listing N versions under a policy checks every
// one of them, each with one list of its signatures and one read per
// signature: 2N extra requests for N versions signed once, whatever N;
// a second reader in the same operation reads nothing more; an untrusted
// version among them is refused, naming it and the others.
func TestTrustRecordsCost(t *testing.T) {
	ci, rogue := testSigner(t, false), testSigner(t, true)
	for _, n := range []int{1, 30} {
		c := &requests{Backend: backend(t)}
		for i := range n {
			publishSigned(t, c, ci, fmt.Sprintf("1.%d.0", i), 3)
		}
		read := func(tr *Trust) int64 {
			t.Helper()
			before := c.n.Load()
			r, err := Resolve(ctx, c, "web", "", false)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := r.Records(ctx, c, tr)
			if err != nil || len(recs) != n {
				t.Fatalf("%d records, %v; want %d", len(recs), err, n)
			}
			for i, rec := range recs {
				if rec.Version != r.Matched[i].Original() {
					t.Fatalf("record %d is %s, want %s", i, rec.Version, r.Matched[i].Original())
				}
			}
			return c.n.Load() - before
		}
		none := read(nil)
		tr := NewTrust([]*signature.Verifier{ci.Public()}, true)
		extra := read(tr) - none
		again := read(tr) - none
		t.Logf("%d versions: %d requests without a policy, %d extra with one, %d extra for a second reader", n, none, extra, again)
		if extra != int64(2*n) || again != 0 {
			t.Errorf("%d versions: %d extra requests under a policy, %d for a second reader; want %d and 0", n, extra, again, 2*n)
		}
		if n == 1 {
			continue
		}
		// Two versions signed by an untrusted key.
		for _, v := range []string{"1.5.0", "1.7.0"} {
			if _, err := Countersign(ctx, c, rogue, "web", v); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Resolve(ctx, c, "web", "", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Records(ctx, c, NewTrust([]*signature.Verifier{ci.Public()}, true))
		if err != nil {
			t.Fatalf("signed by ci and countersigned by a stranger: %v; want trusted", err)
		}
		publish := func(v string) {
			if _, err := WriteRecord(ctx, c, &Record{Name: "web", Version: v}, now); err != nil {
				t.Fatal(err)
			}
		}
		publish("2.0.0")
		publish("2.1.0")
		if r, err = Resolve(ctx, c, "web", "", false); err != nil {
			t.Fatal(err)
		}
		_, err = r.Records(ctx, c, NewTrust([]*signature.Verifier{ci.Public()}, true))
		var ue *UntrustedRecordError
		if !errors.As(err, &ue) || ue.Key != VersionKey("web", "2.0.0") || !strings.Contains(err.Error(), "1 other record read with it is refused too: "+VersionKey("web", "2.1.0")) {
			t.Errorf("two unsigned versions in the list: %v; want 2.0.0 refused, naming 2.1.0", err)
		}
	}
}
