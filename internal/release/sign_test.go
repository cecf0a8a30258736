package release

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

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
		r := &Record{Name: "web", Version: v, Artifacts: map[string]string{"site": a1}, Images: map[string]string{"app": imgRef}}
		if v == "1.0.0" {
			r.PreviousVersion = "0.9.0" // as PlanVersion plans it
		}
		return r
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

// noSignature checks that nothing signed the record at key (its stored
// bytes).
func noSignature(t *testing.T, b store.Backend, key string) {
	t.Helper()
	envs, err := ReadSignatures(ctx, b, key, stored(t, b, key))
	if err != nil || len(envs) != 0 {
		t.Fatalf("%s has %d signatures (%v), want none", key, len(envs), err)
	}
}

// TestSignOnlyWhatWasWritten: a writer finding its record already written
// (a channel's next move, a version's yank state, a version of the same
// content) signs it only when it is what the writer would have written in
// every field but its time: an earlier attempt of the same operation. A
// record someone else pre-wrote with fields of their choosing (a move's
// reason, a record's previous_version, an entry the writer would not have
// written) is refused and left unsigned, unless this key signed it
// already.
func TestSignOnlyWhatWasWritten(t *testing.T) {
	st := store.New(backend(t))
	b := st.Backend()
	if _, err := st.PutBlob(ctx, digest.Bytes([]byte("one")), strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	ci := testSigner(t, false)
	earlier := now.Add(-time.Hour)
	rec := func(v, previous string) *Record {
		return &Record{Name: "web", Version: v, Artifacts: map[string]string{"site": a1}, PreviousVersion: previous}
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := WriteRecord(ctx, b, rec(v, ""), earlier); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("move", func(t *testing.T) {
		// Someone pre-writes the move CI is about to make, with their reason.
		if _, err := WriteMove(ctx, b, "web", "prod", 0, "", "1.0.0", "approved by the CISO", earlier); err != nil {
			t.Fatal(err)
		}
		var moved *MovedError
		_, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: 0, Reason: "deploy"}, now, SignWith(ci))
		if !errors.As(err, &moved) || !moved.Foreign || !strings.Contains(err.Error(), `its reason is "approved by the CISO", not this move's "deploy"`) {
			t.Fatalf("MoveTo over another's move: %v, want a foreign *MovedError", err)
		}
		noSignature(t, b, moveKey("web", "prod", 1))
		// An earlier attempt of this very move (its time differs) is
		// adopted and signed.
		if _, err := WriteMove(ctx, b, "web", "staging", 0, "", "1.0.0", "deploy", earlier); err != nil {
			t.Fatal(err)
		}
		m, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "staging", To: "1.0.0", Seq: 0, Reason: "deploy"}, now, SignWith(ci))
		if err != nil || m.At != earlier.Format(time.RFC3339) {
			t.Fatalf("MoveTo over its earlier attempt: %+v, %v", m, err)
		}
		signedBy(t, b, moveKey("web", "staging", 1), ci)
	})

	t.Run("yank", func(t *testing.T) {
		y, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", AnySeq, earlier)
		if err != nil {
			t.Fatal(err)
		}
		// Expecting entry 1 to be the last, the writer writes entry 2 in
		// the same state, signed: entry 1 is not its own and stays unsigned.
		y2, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", y.Seq, now, SignWith(ci))
		if err != nil || y2.Seq != y.Seq+1 {
			t.Fatalf("SetYank after the entry expected: %+v, %v; want entry %d", y2, err, y.Seq+1)
		}
		noSignature(t, b, yankKey("web", "1.0.0", 1))
		signedBy(t, b, yankKey("web", "1.0.0", 2), ci)
		// Any entry of this state and reason: an earlier attempt's, found
		// and (by this key already) accepted, nothing added.
		if y3, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", AnySeq, now, SignWith(ci)); err != nil || y3.Seq != 2 {
			t.Fatalf("SetYank finding its own entry: %+v, %v", y3, err)
		}
		// One written by someone else in that state, found with AnySeq,
		// is an earlier attempt's as far as this writer can tell: signed.
		if _, err := SetYank(ctx, b, "web", "1.1.0", true, "broken", AnySeq, earlier); err != nil {
			t.Fatal(err)
		}
		if _, err := SetYank(ctx, b, "web", "1.1.0", true, "broken", AnySeq, now, SignWith(ci)); err != nil {
			t.Fatal(err)
		}
		signedBy(t, b, yankKey("web", "1.1.0", 1), ci)
	})

	t.Run("publish", func(t *testing.T) {
		// Someone pre-publishes the content CI publishes next, choosing its
		// previous_version; a plan adopting it by content asks for that
		// very previous_version.
		if _, err := WriteRecord(ctx, b, rec("2.0.0", "0.0.1"), earlier); err != nil {
			t.Fatal(err)
		}
		for _, previous := range []string{"0.0.1", "1.1.0"} {
			var foreign *ForeignRecordError
			if _, err := Publish(ctx, st, rec("2.0.0", previous), now, SignWith(ci)); !errors.As(err, &foreign) || !strings.Contains(err.Error(), "previous_version") {
				t.Fatalf("Publish over a record with previous_version 0.0.1, asking %s: %v, want *ForeignRecordError", previous, err)
			}
		}
		noSignature(t, b, VersionKey("web", "2.0.0"))
		// An earlier attempt's record (previous_version the highest below
		// it, another time) is adopted and signed.
		if _, err := WriteRecord(ctx, b, rec("3.0.0", "2.0.0"), earlier); err != nil {
			t.Fatal(err)
		}
		got, err := Publish(ctx, st, rec("3.0.0", "2.0.0"), now, SignWith(ci))
		if err != nil || got.PublishedAt != earlier.Format(time.RFC3339) {
			t.Fatalf("Publish over its earlier attempt: %+v, %v", got, err)
		}
		signedBy(t, b, VersionKey("web", "3.0.0"), ci)
		// A record this key signed already is accepted as it is.
		raw := readAll(t, b, VersionKey("web", "2.0.0"))
		if _, err := SignRecord(ctx, b, ci, VersionKey("web", "2.0.0"), raw, KindRelease, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := Publish(ctx, st, rec("2.0.0", "0.0.1"), now, SignWith(ci)); err != nil {
			t.Fatalf("Publish finding its own signature: %v", err)
		}
	})
}

func readAll(t *testing.T, b store.Backend, key string) []byte {
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
	return raw
}

// TestSignFoundOnlyRecent: a record found written exactly as the writer
// would write it is still someone else's when its time is not recent (an
// earlier attempt of this apply ran shortly before): a pre-written,
// backdated record is refused and left unsigned — no CI-signed record
// dated 2020 — while one written a minute earlier is adopted and signed.
func TestSignFoundOnlyRecent(t *testing.T) {
	st := store.New(backend(t))
	b := st.Backend()
	if _, err := st.PutBlob(ctx, digest.Bytes([]byte("one")), strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	ci := testSigner(t, false)
	backdated := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	future := now.Add(time.Hour)
	minuteAgo := now.Add(-time.Minute)
	rec := func(v, previous string) *Record {
		return &Record{Name: "web", Version: v, Artifacts: map[string]string{"site": a1}, PreviousVersion: previous}
	}
	foreign := func(t *testing.T, err error, key, field string) {
		t.Helper()
		var fe *ForeignRecordError
		if !errors.As(err, &fe) || fe.Key != key || !strings.Contains(err.Error(), "its "+field+" is ") {
			t.Fatalf("over a record dated by someone else: %v, want a *ForeignRecordError about %s's %s", err, key, field)
		}
		noSignature(t, b, key)
	}

	t.Run("publish", func(t *testing.T) {
		if _, err := WriteRecord(ctx, b, rec("1.0.0", ""), backdated); err != nil {
			t.Fatal(err)
		}
		_, err := Publish(ctx, st, rec("1.0.0", ""), now, SignWith(ci))
		foreign(t, err, VersionKey("web", "1.0.0"), "published_at")
		if _, err := WriteRecord(ctx, b, rec("2.0.0", "1.0.0"), future); err != nil {
			t.Fatal(err)
		}
		_, err = Publish(ctx, st, rec("2.0.0", "1.0.0"), now, SignWith(ci))
		foreign(t, err, VersionKey("web", "2.0.0"), "published_at")
		// The published_at the request names is the caller's, not the
		// pre-writer's: adopted.
		if _, err := WriteRecord(ctx, b, rec("3.0.0", "2.0.0"), backdated); err != nil {
			t.Fatal(err)
		}
		asked := rec("3.0.0", "2.0.0")
		asked.PublishedAt = backdated.Format(time.RFC3339)
		if _, err := Publish(ctx, st, asked, now, SignWith(ci)); err != nil {
			t.Fatalf("Publish naming the record's published_at: %v", err)
		}
		signedBy(t, b, VersionKey("web", "3.0.0"), ci)
		if _, err := WriteRecord(ctx, b, rec("4.0.0", "3.0.0"), minuteAgo); err != nil {
			t.Fatal(err)
		}
		got, err := Publish(ctx, st, rec("4.0.0", "3.0.0"), now, SignWith(ci))
		if err != nil || got.PublishedAt != minuteAgo.Format(time.RFC3339) {
			t.Fatalf("Publish over a record written a minute earlier: %+v, %v", got, err)
		}
		signedBy(t, b, VersionKey("web", "4.0.0"), ci)
	})

	t.Run("move", func(t *testing.T) {
		if _, err := WriteMove(ctx, b, "web", "prod", 0, "", "1.0.0", "deploy", backdated); err != nil {
			t.Fatal(err)
		}
		_, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "prod", To: "1.0.0", Seq: 0, Reason: "deploy"}, now, SignWith(ci))
		foreign(t, err, moveKey("web", "prod", 1), "at")
		if _, err := WriteMove(ctx, b, "web", "staging", 0, "", "1.0.0", "deploy", minuteAgo); err != nil {
			t.Fatal(err)
		}
		if _, err := MoveTo(ctx, st, MoveRequest{Release: "web", Channel: "staging", To: "1.0.0", Seq: 0, Reason: "deploy"}, now, SignWith(ci)); err != nil {
			t.Fatalf("MoveTo over a move written a minute earlier: %v", err)
		}
		signedBy(t, b, moveKey("web", "staging", 1), ci)
	})

	t.Run("yank", func(t *testing.T) {
		if _, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", AnySeq, backdated); err != nil {
			t.Fatal(err)
		}
		_, err := SetYank(ctx, b, "web", "1.0.0", true, "broken", AnySeq, now, SignWith(ci))
		foreign(t, err, yankKey("web", "1.0.0", 1), "at")
		if _, err := SetYank(ctx, b, "web", "2.0.0", true, "broken", AnySeq, minuteAgo); err != nil {
			t.Fatal(err)
		}
		if _, err := SetYank(ctx, b, "web", "2.0.0", true, "broken", AnySeq, now, SignWith(ci)); err != nil {
			t.Fatalf("SetYank over an entry written a minute earlier: %v", err)
		}
		signedBy(t, b, yankKey("web", "2.0.0", 1), ci)
	})
}

// TestSignFoundOtherLayout: a record found with the content the writer
// publishes, recent, but not laid out byte for byte as this provider
// writes it, is someone else's: a *ForeignRecordError naming the sha256
// of its stored bytes (what an approval states), not a failure to sign
// that every later apply meets again.
func TestSignFoundOtherLayout(t *testing.T) {
	st := store.New(backend(t))
	b := st.Backend()
	if _, err := st.PutBlob(ctx, digest.Bytes([]byte("one")), strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	ci := testSigner(t, false)
	r := &Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"site": a1}}
	scratch := backend(t)
	if _, err := WriteRecord(ctx, scratch, r, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	var other bytes.Buffer
	if err := json.Compact(&other, readAll(t, scratch, VersionKey("web", "1.0.0"))); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, VersionKey("web", "1.0.0"), bytes.NewReader(other.Bytes())); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and again: the same answer, nothing signed
		_, err := Publish(ctx, st, &Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"site": a1}}, now, SignWith(ci))
		var foreign *ForeignRecordError
		if !errors.As(err, &foreign) || !strings.Contains(err.Error(), "not laid out as this provider writes them") ||
			!strings.Contains(err.Error(), "--digest "+digest.Bytes(other.Bytes()).String()+" --release web@1.0.0`") {
			t.Fatalf("Publish over another writer's layout: %v, want a *ForeignRecordError with its sha256", err)
		}
		noSignature(t, b, VersionKey("web", "1.0.0"))
	}
}
