package signature

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

const testPredicateType = "https://example.test/record/v1"

func testStatement(t testing.TB, record []byte) []byte {
	t.Helper()
	st, err := NewStatement([]Subject{{Name: "record", Digest: digest.Bytes(record)}}, testPredicateType, map[string]any{"version": "1.0.0", "cmd": "a && b"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{Ed25519, ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			s := newSigner(t, alg)
			record := []byte("release app 1.0.0\n")
			env, err := Sign(s, testStatement(t, record))
			if err != nil {
				t.Fatal(err)
			}
			if len(env.Signatures) != 1 || env.Signatures[0].KeyID != s.KeyID() || env.PayloadType != PayloadType {
				t.Fatalf("envelope %+v", env)
			}
			// Through JSON, as the store keeps it.
			b, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			env2, err := ParseEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			st, signers, err := Verify(env2, []*Verifier{newSigner(t, alg).Public(), s.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(signers, []string{s.KeyID()}) {
				t.Fatalf("signers %v, want [%s]", signers, s.KeyID())
			}
			if subs := st.Subjects(); len(subs) != 1 || subs[0].Name != "record" || subs[0].Digest != digest.Bytes(record) {
				t.Fatalf("subjects %+v", subs)
			}
			var pred map[string]string
			if err := st.DecodePredicate(testPredicateType, &pred); err != nil || pred["cmd"] != "a && b" {
				t.Fatalf("predicate %v, %v", pred, err)
			}
			if err := st.DecodePredicate(ProvenancePredicateType, &pred); err == nil {
				t.Fatal("DecodePredicate accepted the wrong predicate type")
			}
			// Deterministic: the same statement signed again is the same envelope.
			again, err := Sign(s, testStatement(t, record))
			if err != nil {
				t.Fatal(err)
			}
			if again.Signatures[0] != env.Signatures[0] || again.Payload != env.Payload {
				t.Fatal("signing the same statement twice gave different envelopes")
			}
		})
	}
}

func TestNewStatementBytes(t *testing.T) {
	got, err := NewStatement([]Subject{{Name: "a.zip", Digest: digest.Bytes([]byte("a"))}}, testPredicateType, map[string]any{"z": 1, "a": "<&>"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.zip","digest":{"sha256":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}}],"predicateType":"https://example.test/record/v1","predicate":{"a":"<&>","z":1}}`
	if string(got) != want {
		t.Fatalf("statement\n%s\nwant\n%s", got, want)
	}
	if _, err := NewStatement(nil, testPredicateType, nil); err == nil {
		t.Fatal("a statement without subjects was accepted")
	}
	if _, err := NewStatement([]Subject{{Name: "a"}}, "", nil); err == nil {
		t.Fatal("a statement without predicate type was accepted")
	}
}

// signed returns an envelope by s over a statement about record.
func signed(t testing.TB, s *Signer) *Envelope {
	t.Helper()
	env, err := Sign(s, testStatement(t, []byte("record")))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestVerifyRefuses(t *testing.T) {
	s := newSigner(t, ECDSAP256)
	trusted := []*Verifier{s.Public()}
	reencode := func(env *Envelope, payload []byte) {
		env.Payload = base64.StdEncoding.EncodeToString(payload)
	}

	t.Run("tampered payload", func(t *testing.T) {
		env := signed(t, s)
		reencode(env, testStatement(t, []byte("another record")))
		_, _, err := Verify(env, trusted)
		var ue *UntrustedError
		if !errors.As(err, &ue) || !slices.Equal(ue.Invalid, []string{s.KeyID()}) {
			t.Fatalf("error %v, want an UntrustedError naming %s as invalid", err, s.KeyID())
		}
	})
	t.Run("tampered signature", func(t *testing.T) {
		for _, alg := range []Algorithm{Ed25519, ECDSAP256} {
			s := newSigner(t, alg)
			env := signed(t, s)
			raw, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
			raw[len(raw)/2] ^= 1
			env.Signatures[0].Sig = base64.StdEncoding.EncodeToString(raw)
			var ue *UntrustedError
			if _, _, err := Verify(env, []*Verifier{s.Public()}); !errors.As(err, &ue) {
				t.Fatalf("%s: error %v, want an UntrustedError", alg, err)
			}
		}
	})
	t.Run("untrusted key", func(t *testing.T) {
		other := newSigner(t, Ed25519)
		env := signed(t, other)
		_, _, err := Verify(env, trusted)
		var ue *UntrustedError
		if !errors.As(err, &ue) || !slices.Equal(ue.Found, []string{other.KeyID()}) || len(ue.Invalid) != 0 {
			t.Fatalf("error %v, want an UntrustedError listing %s as found", err, other.KeyID())
		}
	})
	t.Run("keyid removed still verifies by trying every key", func(t *testing.T) {
		env := signed(t, s)
		env.Signatures[0].KeyID = ""
		if _, ids, err := Verify(env, trusted); err != nil || !slices.Equal(ids, []string{s.KeyID()}) {
			t.Fatalf("got %v, %v", ids, err)
		}
	})
	t.Run("keyid swapped to an untrusted one", func(t *testing.T) {
		env := signed(t, s)
		env.Signatures[0].KeyID = newSigner(t, ECDSAP256).KeyID()
		var ue *UntrustedError
		if _, _, err := Verify(env, trusted); !errors.As(err, &ue) {
			t.Fatalf("error %v, want an UntrustedError", err)
		}
	})
	t.Run("no signatures", func(t *testing.T) {
		env := signed(t, s)
		env.Signatures = nil
		var ue *UntrustedError
		if _, _, err := Verify(env, trusted); !errors.As(err, &ue) {
			t.Fatalf("error %v, want an UntrustedError", err)
		}
	})
	t.Run("wrong payload type", func(t *testing.T) {
		env := signed(t, s)
		env.PayloadType = "application/json"
		var pe *PayloadTypeError
		if _, _, err := Verify(env, trusted); !errors.As(err, &pe) || pe.Got != "application/json" {
			t.Fatalf("error %v, want a PayloadTypeError", err)
		}
	})
	t.Run("signed payload not a statement", func(t *testing.T) {
		for _, payload := range []string{
			`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"sha256":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}}],"predicateType":"x"}`,
			`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}`,
			`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha512":"00"}}],"predicateType":"x"}`,
			`[1,2]`,
		} {
			env := &Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString([]byte(payload))}
			if err := AddSignature(env, s); err != nil {
				t.Fatal(err)
			}
			var se *StatementError
			if _, _, err := Verify(env, trusted); !errors.As(err, &se) {
				t.Fatalf("payload %s: error %v, want a StatementError", payload, err)
			}
		}
	})
}

func TestCountersignature(t *testing.T) {
	ci, manager := newSigner(t, Ed25519), newSigner(t, ECDSAP256)
	env := signed(t, ci)
	if err := AddSignature(env, manager); err != nil {
		t.Fatal(err)
	}
	if err := AddSignature(env, manager); err != nil { // again: no second copy
		t.Fatal(err)
	}
	if len(env.Signatures) != 2 {
		t.Fatalf("%d signatures, want 2", len(env.Signatures))
	}
	// Only the manager trusted: the CI signature is skipped, not fatal.
	_, ids, err := Verify(env, []*Verifier{manager.Public()})
	if err != nil || !slices.Equal(ids, []string{manager.KeyID()}) {
		t.Fatalf("got %v, %v; want the manager's key", ids, err)
	}
	// Both trusted: both listed.
	_, ids, err = Verify(env, []*Verifier{ci.Public(), manager.Public()})
	want := []string{ci.KeyID(), manager.KeyID()}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("got %v, %v; want %v", ids, err, want)
	}
	// A garbled first signature does not hide the good second one.
	env.Signatures[0].Sig = "%%%"
	if _, ids, err := Verify(env, []*Verifier{manager.Public()}); err != nil || len(ids) != 1 {
		t.Fatalf("got %v, %v", ids, err)
	}
}

func TestProvenanceRoundTrip(t *testing.T) {
	s := newSigner(t, Ed25519)
	out := digest.Bytes([]byte("output"))
	p := NewProvenance("https://example.test/build/v1", "https://example.test/builder", map[string]any{"command": []string{"make"}})
	p.BuildDefinition.ResolvedDependencies = []ResourceDescriptor{{Name: "src", Digest: SHA256(digest.Bytes([]byte("src")))}}
	p.RunDetails.Byproducts = []ResourceDescriptor{{Name: "log", Digest: SHA256(digest.Bytes([]byte("log")))}}
	st, err := ProvenanceStatement([]Subject{{Name: "out", Digest: out}}, p)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(s, st)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Verify(env, []*Verifier{s.Public()})
	if err != nil {
		t.Fatal(err)
	}
	gp, err := got.Provenance()
	if err != nil {
		t.Fatal(err)
	}
	if gp.RunDetails.Builder.ID != "https://example.test/builder" || gp.BuildDefinition.ResolvedDependencies[0].Digest["sha256"] != digest.Bytes([]byte("src")).Hex() {
		t.Fatalf("provenance %+v", gp)
	}
	if _, err := ProvenanceStatement([]Subject{{Name: "out", Digest: out}}, NewProvenance("", "b", nil)); err == nil {
		t.Fatal("a provenance without buildType was accepted")
	}
}

// TestVerifyBoundsSignatures: an envelope with more than MaxSignatures
// signatures is refused before any is tried, though one of them is a
// valid signature by a trusted key; MaxSignatures are still read.
func TestVerifyBoundsSignatures(t *testing.T) {
	s := newSigner(t, Ed25519)
	env := signed(t, s)
	for len(env.Signatures) < MaxSignatures {
		env.Signatures = append([]dsse.Signature{{Sig: env.Signatures[0].Sig}}, env.Signatures...)
	}
	if _, ids, err := Verify(env, []*Verifier{s.Public()}); err != nil || !slices.Equal(ids, []string{s.KeyID()}) {
		t.Fatalf("%d signatures: %v, %v", len(env.Signatures), ids, err)
	}
	env.Signatures = append([]dsse.Signature{{Sig: env.Signatures[0].Sig}}, env.Signatures...)
	var tooMany *TooManySignaturesError
	if _, _, err := Verify(env, []*Verifier{s.Public()}); !errors.As(err, &tooMany) || tooMany.Count != MaxSignatures+1 {
		t.Fatalf("%d signatures: %v, want *TooManySignaturesError", len(env.Signatures), err)
	}
}
