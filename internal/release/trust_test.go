package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// reads is how many lists and opens c served.
func (c *countingBackend) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists + len(c.opened)
}

// TestTrustCheck: the policy's verdicts on signed, unsigned, untrusted
// and foreign-signed records, with and without require; each record's
// signatures read once per Trust; no policy reads nothing.
func TestTrustCheck(t *testing.T) {
	cb := &countingBackend{Backend: backend(t)}
	ci, other := testSigner(t, false), testSigner(t, true)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		if _, err := WriteRecord(ctx, cb, &Record{Name: "web", Version: v}, now); err != nil {
			t.Fatal(err)
		}
	}
	get := func(v string) *Record {
		r, err := Get(ctx, cb, "web", v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1, r2, r3 := get("1.0.0"), get("2.0.0"), get("3.0.0")
	if _, err := SignRecord(ctx, cb, ci, VersionKey("web", "1.0.0"), r1.encode(), KindRelease, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := SignRecord(ctx, cb, other, VersionKey("web", "2.0.0"), r2.encode(), KindRelease, nil); err != nil {
		t.Fatal(err)
	}
	trusted := []*signature.Verifier{ci.Public()}

	// No policy: nothing read.
	n := cb.reads()
	for _, tr := range []*Trust{nil, NewTrust(nil, false)} {
		if err := tr.CheckRecord(ctx, cb, r3); err != nil {
			t.Fatalf("no policy refused: %v", err)
		}
	}
	if cb.reads() != n {
		t.Fatal("a check without a policy read the store")
	}

	for _, require := range []bool{false, true} {
		tr := NewTrust(trusted, require)
		if err := tr.CheckRecord(ctx, cb, r1); err != nil {
			t.Errorf("require=%v: the trusted key's signature refused: %v", require, err)
		}
		var ue *UntrustedRecordError
		err := tr.CheckRecord(ctx, cb, r2)
		if !errors.As(err, &ue) || ue.Unsigned || len(ue.Found) != 1 || ue.Found[0] != other.KeyID() {
			t.Errorf("require=%v: an untrusted signer: %v", require, err)
		}
		err = tr.CheckRecord(ctx, cb, r3)
		if require != errors.As(err, &ue) {
			t.Errorf("require=%v: an unsigned record: %v", require, err)
		}
		if require && (!ue.Unsigned || !strings.Contains(err.Error(), VersionKey("web", "3.0.0"))) {
			t.Errorf("the refusal does not say the record is unsigned, naming it: %v", err)
		}
		// Memoised: checking again reads nothing.
		n := cb.reads()
		_ = tr.CheckRecord(ctx, cb, r1)
		_ = tr.CheckRecord(ctx, cb, r2)
		if cb.reads() != n {
			t.Error("a record's signatures were read twice in one operation")
		}
	}

	// A signature of 1.0.0 copied to 3.0.0's place: it names another record.
	env, _ := ReadSignatures(ctx, cb, VersionKey("web", "1.0.0"), r1.StoredDigest())
	body, err := json.Marshal(env[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cb.Create(ctx, store.SignatureKey(r3.StoredDigest(), ci.KeyID()), bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	var ue *UntrustedRecordError
	err = NewTrust(trusted, false).CheckRecord(ctx, cb, r3)
	if !errors.As(err, &ue) || len(ue.Invalid) != 1 || ue.Invalid[0] != ci.KeyID() || !strings.Contains(err.Error(), "is not about") {
		t.Errorf("a copied signature: %v", err)
	}
}

// TestTrustGates: under a policy, a gate counts only moves it trusts: a
// move forged on staging (unsigned under require, or signed by another
// key) does not open prod's gate; a signed one does.
func TestTrustGates(t *testing.T) {
	b := backend(t)
	ci, other := testSigner(t, false), testSigner(t, true)
	if _, err := WriteRecord(ctx, b, &Record{Name: "web", Version: "1.1.0"}, now); err != nil {
		t.Fatal(err)
	}
	forged, err := WriteMove(ctx, b, "web", "staging", 0, "", "1.1.0", "forged", now)
	if err != nil {
		t.Fatal(err)
	}
	var gate *GateError
	if err := CheckMove(ctx, b, "web", "1.1.0", []string{"staging"}, NewTrust([]*signature.Verifier{ci.Public()}, true)); !errors.As(err, &gate) {
		t.Fatalf("an unsigned staging move opened the gate under require: %v", err)
	}
	if _, err := SignRecord(ctx, b, other, moveKey("web", "staging", forged.Seq), forged.encode(), KindMove, nil); err != nil {
		t.Fatal(err)
	}
	if err := CheckMove(ctx, b, "web", "1.1.0", []string{"staging"}, NewTrust([]*signature.Verifier{ci.Public()}, false)); !errors.As(err, &gate) {
		t.Fatalf("a staging move signed by an untrusted key opened the gate: %v", err)
	}
	// Without a policy the gate reads the history as it is.
	if err := CheckMove(ctx, b, "web", "1.1.0", []string{"staging"}); err != nil {
		t.Fatalf("no policy: %v", err)
	}
	// A move the trusted key signed opens it.
	if _, err := SignRecord(ctx, b, ci, moveKey("web", "staging", forged.Seq), forged.encode(), KindMove, nil); err != nil {
		t.Fatal(err)
	}
	if err := CheckMove(ctx, b, "web", "1.1.0", []string{"staging"}, NewTrust([]*signature.Verifier{ci.Public()}, true)); err != nil {
		t.Fatalf("a trusted staging move: %v", err)
	}
}

// TestUntrustedRecordNamesItsSignCommand: a refused record's message
// gives the sign command that countersigns it, with the option for its
// kind.
func TestUntrustedRecordNamesItsSignCommand(t *testing.T) {
	act := digest.Bytes([]byte("step"))
	for key, want := range map[string]string{
		VersionKey("web", "1.0.0"):       "--release web@1.0.0`",
		store.MoveKey("web", "prod", 3):  "--move web/prod@3`",
		store.YankKey("web", "1.0.0", 2): "--yank web@1.0.0#2`",
		store.ActionKey(act):             "--action " + act.String() + "`",
	} {
		msg := (&UntrustedRecordError{Key: key, Found: []string{"abc"}}).Error()
		if !strings.Contains(msg, "`terraform-provider-immutable sign --store STORE --key TRUSTED-KEY.pem --trusted-key SIGNER.pub "+want) {
			t.Errorf("%s: %s", key, msg)
		}
	}
	if msg := (&ForeignRecordError{Key: store.MoveKey("web", "prod", 3), Detail: "x"}).Error(); !strings.Contains(msg, "--move web/prod@3`") {
		t.Errorf("foreign move: %s", msg)
	}
}
