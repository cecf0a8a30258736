package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func testBackend(t *testing.T) store.Backend {
	t.Helper()
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putRecord stores body at key once.
func putRecord(t *testing.T, b store.Backend, key string, body []byte) {
	t.Helper()
	if err := b.Create(context.Background(), key, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// TestSignRecord: a record is signed once per key, about its stored
// bytes; signing again keeps the signature; ReadSignatures finds it and
// VerifyRecord accepts it only for its record and predicate type.
func TestSignRecord(t *testing.T) {
	ctx := context.Background()
	b := testBackend(t)
	s := newSigner(t, Ed25519)
	key, body := store.VersionKey("web", "1.0.0"), []byte("a record\n")
	putRecord(t, b, key, body)
	sum := digest.Bytes(body)
	extra := []Subject{{Name: "artifacts/site", Digest: digest.Bytes([]byte("site"))}}
	env, err := SignRecord(ctx, b, s, key, body, RecordPredicateType, RecordPredicate{Kind: "release"}, extra)
	if err != nil {
		t.Fatal(err)
	}
	again, err := SignRecord(ctx, b, s, key, body, RecordPredicateType, RecordPredicate{Kind: "release"}, extra)
	if err != nil || again.Signatures[0].Sig != env.Signatures[0].Sig {
		t.Fatalf("signing again: %v (the stored signature must be kept)", err)
	}
	envs, err := ReadSignatures(ctx, b, key, sum)
	if err != nil || len(envs) != 1 {
		t.Fatalf("ReadSignatures: %d, %v; want 1", len(envs), err)
	}
	st, err := VerifyRecord(envs[0], []*Verifier{s.Public()}, key, sum, RecordPredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if subs := st.Subjects(); len(subs) != 2 || subs[0] != (Subject{Name: key, Digest: sum}) || subs[1] != extra[0] {
		t.Errorf("subjects %v", subs)
	}
	if _, err := VerifyRecord(envs[0], []*Verifier{s.Public()}, key, sum, ProvenancePredicateType); err == nil {
		t.Error("accepted for another predicate type")
	}
	if _, err := VerifyRecord(envs[0], []*Verifier{s.Public()}, store.VersionKey("web", "2.0.0"), sum, RecordPredicateType); err == nil {
		t.Error("accepted for another record key")
	}
	if _, err := VerifyRecord(envs[0], []*Verifier{newSigner(t, Ed25519).Public()}, key, sum, RecordPredicateType); err == nil {
		t.Error("accepted with an untrusted key")
	}

	// Beside it, something that is not an envelope, something too large
	// and something not named by a key ID: each a stray object, which
	// hides not the signature beside it.
	garbled := store.SignatureKey(sum, newSigner(t, ECDSAP256).KeyID())
	putRecord(t, b, garbled, []byte("not json"))
	large := store.SignatureKey(sum, newSigner(t, ECDSAP256).KeyID())
	putRecord(t, b, large, bytes.Repeat([]byte(" "), MaxStoredSize+1))
	junk := store.SignaturesPrefix(sum) + "zzzz\x1b[31m"
	putRecord(t, b, junk, []byte("junk"))
	envs, stray, err := ReadStored(ctx, b, key, sum)
	if err != nil || len(envs) != 1 || envs[0].Signatures[0].Sig != env.Signatures[0].Sig {
		t.Fatalf("ReadStored beside stray objects: %d signatures, %v; want the one signature", len(envs), err)
	}
	var got []string
	for _, s := range stray {
		got = append(got, s.Key)
	}
	slices.Sort(got)
	if want := []string{garbled, large, junk}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("stray objects %q, want %q", got, want)
	}
	for _, s := range stray {
		if strings.ContainsRune(s.Error(), 0x1b) {
			t.Errorf("a stray object's name printed raw: %q", s.Error())
		}
	}
}

// TestSignRecordRefusesForeignSignature: a signature already stored under
// the key's name that is not a valid one of the record (tampered, or
// about another record) is refused and left as it is.
func TestSignRecordRefusesForeignSignature(t *testing.T) {
	ctx := context.Background()
	b := testBackend(t)
	s := newSigner(t, Ed25519)
	k1, k2 := store.VersionKey("web", "1.0.0"), store.VersionKey("web", "2.0.0")
	r1, r2 := []byte("record one\n"), []byte("record two\n")
	putRecord(t, b, k1, r1)
	putRecord(t, b, k2, r2)
	sign := func(key string, body []byte) (*Envelope, error) {
		return SignRecord(ctx, b, s, key, body, RecordPredicateType, RecordPredicate{Kind: "release"}, nil)
	}
	// A signature of 2.0.0 copied to where 1.0.0's goes.
	env, err := sign(k2, r2)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	putRecord(t, b, store.SignatureKey(digest.Bytes(r1), s.KeyID()), raw)
	if _, err := sign(k1, r1); err == nil || !strings.Contains(err.Error(), "not a valid one") {
		t.Fatalf("signing over a copied signature: %v", err)
	}
	// Bytes that are not the record's are not signed.
	if _, err := sign(k1, r2); err == nil {
		t.Fatal("signed bytes the record does not hold")
	}
	if _, err := sign(store.VersionKey("web", "3.0.0"), r2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("signing a missing record: %v", err)
	}
}

// TestVerifyRecordChecksKind: a record statement whose kind is not that of
// its record's key (a release record signed as a channel move) is
// refused, though its signature, key and digest are right.
func TestVerifyRecordChecksKind(t *testing.T) {
	ctx := context.Background()
	b := testBackend(t)
	s := newSigner(t, Ed25519)
	for _, c := range []struct{ key, kind, want string }{
		{store.VersionKey("web", "1.0.0"), KindMove, KindRelease},
		{store.MoveKey("web", "prod", 1), KindYank, KindMove},
		{store.YankKey("web", "1.0.0", 1), KindRelease, KindYank},
		{store.ActionKey(digest.Bytes([]byte("step"))), KindRelease, ""},
	} {
		body := []byte("record at " + c.key + "\n")
		putRecord(t, b, c.key, body)
		sum := digest.Bytes(body)
		env, err := SignRecord(ctx, b, s, c.key, body, RecordPredicateType, RecordPredicate{Kind: c.kind}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = VerifyRecord(env, []*Verifier{s.Public()}, c.key, sum, RecordPredicateType)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("kind %q, but %s is a record of kind %q", c.kind, c.key, c.want)) {
			t.Errorf("%s signed as %q: %v", c.key, c.kind, err)
		}
		if c.want == "" {
			continue
		}
		right, err := NewStatement([]Subject{{Name: c.key, Digest: sum}}, RecordPredicateType, RecordPredicate{Kind: c.want})
		if err != nil {
			t.Fatal(err)
		}
		env, err = Sign(s, right)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyRecord(env, []*Verifier{s.Public()}, c.key, sum, RecordPredicateType); err != nil {
			t.Errorf("%s signed as %q: %v", c.key, c.want, err)
		}
	}
}

// TestStoredSignatureShape: a stored envelope must hold exactly one
// signature, whose keyid is the key ID it is stored under. Extra
// signatures (thousands with an empty keyid would each be tried against
// every trusted key), an empty keyid or another key's ID is a stray
// object (a *StoredError), though the envelope also holds the key's valid
// signature.
func TestStoredSignatureShape(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, Ed25519)
	key, body := store.VersionKey("web", "1.0.0"), []byte("a record\n")
	sum := digest.Bytes(body)
	statement, err := NewStatement([]Subject{{Name: key, Digest: sum}}, RecordPredicateType, RecordPredicate{Kind: KindRelease})
	if err != nil {
		t.Fatal(err)
	}
	good, err := Sign(s, statement)
	if err != nil {
		t.Fatal(err)
	}
	sig := good.Signatures[0]
	for name, c := range map[string]struct {
		sigs []dsse.Signature
		want string
	}{
		"extra signatures": {append([]dsse.Signature{sig}, make([]dsse.Signature, 1000)...), "it holds 1001 signatures"},
		"empty keyid":      {[]dsse.Signature{{Sig: sig.Sig}}, `its signature names key ID ""`},
		"another keyid":    {[]dsse.Signature{{KeyID: newSigner(t, Ed25519).KeyID(), Sig: sig.Sig}}, "its signature names key ID"},
		"no signature":     {nil, "it holds 0 signatures"},
	} {
		t.Run(name, func(t *testing.T) {
			b := testBackend(t)
			putRecord(t, b, key, body)
			env := *good
			env.Signatures = c.sigs
			raw, err := json.Marshal(&env)
			if err != nil {
				t.Fatal(err)
			}
			putRecord(t, b, store.SignatureKey(sum, s.KeyID()), raw)
			// A stray object: no signature read, and named.
			envs, stray, err := ReadStored(ctx, b, key, sum)
			if err != nil || len(envs) != 0 || len(stray) != 1 || !strings.Contains(stray[0].Error(), c.want) {
				t.Fatalf("ReadStored: %d signatures, %v, %v; want one stray object saying %q", len(envs), stray, err, c.want)
			}
			var bad *StoredError
			// Signing again meets it and refuses it, overwriting nothing.
			if _, err := SignRecord(ctx, b, s, key, body, RecordPredicateType, RecordPredicate{Kind: KindRelease}, nil); !errors.As(err, &bad) {
				t.Fatalf("SignRecord over it: %v, want a *StoredError", err)
			}
		})
	}
	// The shape SignRecord stores is read back.
	b := testBackend(t)
	putRecord(t, b, key, body)
	raw, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	putRecord(t, b, store.SignatureKey(sum, s.KeyID()), raw)
	if envs, err := ReadSignatures(ctx, b, key, sum); err != nil || len(envs) != 1 {
		t.Fatalf("ReadSignatures: %d, %v", len(envs), err)
	}
}

// TestCountersign: a second key signs the first key's statement again,
// byte for byte (a build's provenance carries over), stored under its own
// key ID; signing again keeps it; a statement about another record, of
// another predicate type, or a record whose bytes changed is refused and
// nothing is written.
func TestCountersign(t *testing.T) {
	ctx := context.Background()
	b := testBackend(t)
	first, second := newSigner(t, Ed25519), newSigner(t, ECDSAP256)
	key, body := store.ActionKey(digest.Bytes([]byte("step"))), []byte("an action record\n")
	putRecord(t, b, key, body)
	sum := digest.Bytes(body)
	p := NewProvenance("https://immutable-infra.dev/build/v1", "https://ci.example", map[string]any{"command": []string{"make"}})
	env, err := SignRecord(ctx, b, first, key, body, ProvenancePredicateType, p, []Subject{{Name: "out", Digest: digest.Bytes([]byte("out"))}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := VerifyRecord(env, []*Verifier{first.Public()}, key, sum, ProvenancePredicateType)
	if err != nil {
		t.Fatal(err)
	}
	other := store.ActionKey(digest.Bytes([]byte("other step")))
	putRecord(t, b, other, body)
	for name, f := range map[string]func() error{
		"another record": func() error {
			_, err := Countersign(ctx, b, second, other, body, st, ProvenancePredicateType)
			return err
		},
		"another type": func() error {
			_, err := Countersign(ctx, b, second, key, body, st, RecordPredicateType)
			return err
		},
		"changed bytes": func() error {
			_, err := Countersign(ctx, b, second, key, []byte("what was checked\n"), st, ProvenancePredicateType)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: countersigned", name)
		}
	}
	if envs, err := ReadSignatures(ctx, b, key, sum); err != nil || len(envs) != 1 {
		t.Fatalf("a refused countersign wrote: %d signatures, %v", len(envs), err)
	}
	env2, err := Countersign(ctx, b, second, key, body, st, ProvenancePredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if env2.Payload != env.Payload || env2.Signatures[0].KeyID != second.KeyID() {
		t.Fatalf("the countersignature is not the same statement by the second key: %+v", env2)
	}
	again, err := Countersign(ctx, b, second, key, body, st, ProvenancePredicateType)
	if err != nil || again.Signatures[0].Sig != env2.Signatures[0].Sig {
		t.Fatalf("countersigning again: %v (the stored signature must be kept)", err)
	}
	envs, err := ReadSignatures(ctx, b, key, sum)
	if err != nil || len(envs) != 2 {
		t.Fatalf("ReadSignatures: %d, %v; want 2", len(envs), err)
	}
	if _, err := VerifyRecord(envs[slices.IndexFunc(envs, func(e *Envelope) bool { return e.Signatures[0].KeyID == second.KeyID() })],
		[]*Verifier{second.Public()}, key, sum, ProvenancePredicateType); err != nil {
		t.Fatal(err)
	}
}
