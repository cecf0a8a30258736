package release

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// testSigner makes a new key: Ed25519, or ECDSA P-256 with ec.
func testSigner(t *testing.T, ec bool) *signature.Signer {
	t.Helper()
	var key any
	if ec {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	} else {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stored is the sha256 of the bytes stored at key.
func stored(t *testing.T, b store.Backend, key string) digest.Sum {
	t.Helper()
	rc, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return digest.Bytes(raw)
}

// signedBy checks that the record at key has exactly one signature, by s,
// about its stored bytes, and returns its statement's subjects.
func signedBy(t *testing.T, b store.Backend, key string, s *signature.Signer) []signature.Subject {
	t.Helper()
	sum := stored(t, b, key)
	envs, err := ReadSignatures(ctx, b, key, sum)
	if err != nil || len(envs) != 1 {
		t.Fatalf("signatures of %s: %d, %v; want 1", key, len(envs), err)
	}
	if ok, err := b.Exists(ctx, store.SignatureKey(sum, s.KeyID())); !ok || err != nil {
		t.Fatalf("no signature at %s: %v", store.SignatureKey(sum, s.KeyID()), err)
	}
	if err := VerifySignature(envs[0], []*signature.Verifier{s.Public()}, key, sum); err != nil {
		t.Fatalf("the signature of %s does not verify: %v", key, err)
	}
	st, _, err := signature.Verify(envs[0], []*signature.Verifier{s.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return st.Subjects()
}

func signatureKeys(t *testing.T, b store.Backend) []string {
	t.Helper()
	keys, err := b.List(ctx, store.FamilySignature.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSignedWrites: with SignWith, a release record, a channel move and a
// yank entry are each signed, about the bytes stored, once per key;
// without it nothing is written under signatures/.
func TestSignedWrites(t *testing.T) {
	st := store.New(backend(t))
	b := st.Backend()
	for _, c := range []string{"one", "two"} {
		if _, err := st.PutBlob(ctx, digest.Bytes([]byte(c)), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	imgRef := "registry.example/web@" + a2
	rec := func(v string) *Record {
		return &Record{Name: "web", Version: v, Artifacts: map[string]string{"site": a1}, Images: map[string]string{"app": imgRef}}
	}
	if _, err := Publish(ctx, st, rec("0.9.0"), now); err != nil {
		t.Fatal(err)
	}
	if keys := signatureKeys(t, b); len(keys) != 0 {
		t.Fatalf("unsigned publish wrote %v", keys)
	}

	ci, manager := testSigner(t, false), testSigner(t, true)
	if _, err := Publish(ctx, st, rec("1.0.0"), now, SignWith(ci)); err != nil {
		t.Fatal(err)
	}
	subjects := signedBy(t, b, VersionKey("web", "1.0.0"), ci)
	var names []string
	for _, s := range subjects {
		names = append(names, s.Name+"="+s.Digest.Hex())
	}
	want := []string{VersionKey("web", "1.0.0") + "=" + stored(t, b, VersionKey("web", "1.0.0")).Hex(),
		"artifacts/site=" + a1[len(digest.Prefix):], "images/app=" + a2[len(digest.Prefix):]}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("subjects %v, want %v", names, want)
	}

	// The same publish again (an apply whose state was lost) keeps the
	// signature; a second key countersigns beside it.
	if _, err := Publish(ctx, st, rec("1.0.0"), now, SignWith(ci)); err != nil {
		t.Fatalf("signing again with the same key: %v", err)
	}
	if _, err := Publish(ctx, st, rec("1.0.0"), now, SignWith(manager)); err != nil {
		t.Fatal(err)
	}
	sum := stored(t, b, VersionKey("web", "1.0.0"))
	envs, err := ReadSignatures(ctx, b, VersionKey("web", "1.0.0"), sum)
	if err != nil || len(envs) != 2 {
		t.Fatalf("two keys signed: %d signatures, %v", len(envs), err)
	}

	m, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: -1}, now, SignWith(ci))
	if err != nil {
		t.Fatal(err)
	}
	signedBy(t, b, moveKey("web", "prod", m.Seq), ci)
	y, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", AnySeq, now, SignWith(ci))
	if err != nil {
		t.Fatal(err)
	}
	signedBy(t, b, yankKey("web", "1.0.0", y.Seq), ci)
	if n := len(signatureKeys(t, b)); n != 4 {
		t.Errorf("%d signatures, want 4 (a record twice, a move, a yank)", n)
	}
}
