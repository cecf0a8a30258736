package gc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func newSigner(t *testing.T) *signature.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	s, err := signature.LoadSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	must(t, err)
	return s
}

// sign signs the record stored at key with s and returns the signature's key.
func sign(t *testing.T, st *store.Store, s *signature.Signer, key, kind string) string {
	t.Helper()
	rc, err := st.Backend().Open(ctx, key)
	must(t, err)
	raw, err := io.ReadAll(rc)
	_ = rc.Close()
	must(t, err)
	_, err = release.SignRecord(ctx, st.Backend(), s, key, raw, kind, nil)
	must(t, err)
	return store.SignatureKey(digest.Bytes(raw), s.KeyID())
}

// TestCollectSignatures: the signatures of kept records (versions the
// policy keeps, build records kept, every channel move and yank entry)
// stay; those of collected records go, before the records; a signature
// whose record is gone (or was rewritten) goes too; and the store stays
// one a second run deletes nothing of.
func TestCollectSignatures(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		ci, manager := newSigner(t), newSigner(t)
		var keep, gone []string
		for _, v := range []string{"1.5.0", "1.1.0"} { // kept by the policy
			keep = append(keep, sign(t, w.st, ci, release.VersionKey("web", v), release.KindRelease),
				sign(t, w.st, manager, release.VersionKey("web", v), release.KindRelease))
		}
		for _, v := range []string{"1.0.0", "1.3.0"} { // collected
			gone = append(gone, sign(t, w.st, ci, release.VersionKey("web", v), release.KindRelease),
				sign(t, w.st, manager, release.VersionKey("web", v), release.KindRelease))
		}
		keep = append(keep,
			sign(t, w.st, ci, store.MoveKey("web", "prod", 1), release.KindMove),
			sign(t, w.st, ci, store.YankKey("web", "1.3.0", 1), release.KindYank), // its version goes, its yank history stays
			sign(t, w.st, ci, store.ActionKey(w.records["kept"]), release.KindAction))
		gone = append(gone, sign(t, w.st, ci, store.ActionKey(w.records["gone"]), release.KindAction))
		// A signature whose record is not there, and one that names a
		// record whose bytes are not the ones signed.
		orphan := store.SignatureKey(digest.Bytes([]byte("a record long gone")), ci.KeyID())
		must(t, w.st.Backend().Create(ctx, orphan, strings.NewReader(`{"payloadType":"x","payload":"","signatures":[]}`)))
		stale := store.SignatureKey(digest.Bytes([]byte("earlier bytes")), manager.KeyID())
		must(t, w.st.Backend().Create(ctx, stale, strings.NewReader(mustJSON(t, w.st, keep[len(keep)-1]))))
		gone = append(gone, orphan, stale)

		var order []string
		testHookDelete = func(_ context.Context, k string) error { order = append(order, k); return nil }
		defer func() { testHookDelete = nil }()
		report, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		for _, k := range keep {
			if !present(t, w.st, k) {
				t.Errorf("the signature %s of a kept record was deleted", k)
			}
		}
		for _, k := range gone {
			if present(t, w.st, k) {
				t.Errorf("the signature %s of a collected or absent record is still there", k)
			}
		}
		if n := report.Deleted[KindSignature].Objects; n != len(gone) {
			t.Errorf("report counts %d signatures deleted, want %d:\n%s", n, len(gone), report)
		}
		// Every signature went before any record.
		isSignature := func(k string) bool { key, _ := store.ParseKey(k); return key.Family == store.FamilySignature }
		if first := slices.IndexFunc(order, func(k string) bool { return !isSignature(k) }); first < len(gone) ||
			slices.ContainsFunc(order[first:], isSignature) {
			t.Fatalf("a record was deleted before a signature: %v", order)
		}
		again, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		if again.Total().Objects != 0 {
			t.Fatalf("a second run deleted more:\n%s", again)
		}
	})
}

func mustRead(t *testing.T, st *store.Store, key string) []byte {
	t.Helper()
	rc, err := st.Backend().Open(ctx, key)
	must(t, err)
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(rc)
	must(t, err)
	return raw
}

func mustJSON(t *testing.T, st *store.Store, key string) string { return string(mustRead(t, st, key)) }

// TestDecodePayloadAsVerifiersDo: a DSSE payload in URL-safe or unpadded
// base64 (other tools write it so, verifiers accept it) names its record
// to the collector too; it seemed to name none, and was collected while
// its record was kept.
func TestDecodePayloadAsVerifiersDo(t *testing.T) {
	payload := []byte(`{"subject":[{"name":"releases/web/versions/1.0.0?>>"}]}`)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		got, err := decodePayload(enc.EncodeToString(payload))
		if err != nil || string(got) != string(payload) {
			t.Errorf("%v: %q, %v", enc, got, err)
		}
	}
	if _, err := decodePayload("not base64!"); err == nil {
		t.Error("garbage decoded")
	}
}

// TestCollectStraySignatures: objects in a record's signature folder that
// are not signatures (any name: junk someone stored there) are collected
// as orphan signatures are, once older than the grace period, whether the
// record stays or not; anything elsewhere under signatures/ that is no
// record's folder is left alone. Junk named other than a key ID stayed
// for good.
func TestCollectStraySignatures(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		ci := newSigner(t)
		kept := sign(t, w.st, ci, release.VersionKey("web", "1.5.0"), release.KindRelease)
		keptKey, _ := store.ParseKey(kept)
		stray := []string{
			store.SignaturesPrefix(keptKey.Digest) + "zzzz",
			store.SignaturesPrefix(keptKey.Digest) + "notes/readme.txt",
			store.SignaturesPrefix(digest.Bytes([]byte("a record long gone"))) + "zzzz",
		}
		foreign := []string{"signatures/readme.txt", "signatures/sha256/zz/not-a-digest/zzzz"}
		for _, k := range append(slices.Clone(stray), foreign...) {
			must(t, w.st.Backend().Create(ctx, k, strings.NewReader("junk\n")))
		}
		// Young: kept, as any object stored within the grace period.
		_, err := Collect(ctx, w.st, policy, Options{})
		must(t, err)
		for _, k := range append(slices.Clone(stray), foreign...) {
			if !present(t, w.st, k) {
				t.Errorf("%s was deleted within the grace period", k)
			}
		}
		report, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		for _, k := range stray {
			if present(t, w.st, k) {
				t.Errorf("the stray object %s is still there after the grace period", k)
			}
		}
		for _, k := range append([]string{kept}, foreign...) {
			if !present(t, w.st, k) {
				t.Errorf("%s was deleted", k)
			}
		}
		if n := report.Deleted[KindSignature].Objects; n < len(stray) {
			t.Errorf("report counts %d signatures deleted, want at least %d:\n%s", n, len(stray), report)
		}
	})
}
