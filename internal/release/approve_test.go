package release

import (
	"bytes"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestApprovalSignsWhatWasChecked: an approval signs exactly the bytes it
// read and checked; a record replaced in the store after the check (by
// a writer of the bucket, between the approver's review and the signing)
// is not signed, and nothing is written.
func TestApprovalSignsWhatWasChecked(t *testing.T) {
	b := backend(t)
	ci, rm := testSigner(t, false), testSigner(t, true)
	publishSigned(t, b, ci, "1.0.0", 2)
	a, err := ReadApproval(ctx, b, "web", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckTrusted([]*signature.Verifier{ci.Public()}); err != nil {
		t.Fatalf("CI's signature: %v", err)
	}
	if err := a.CheckTrusted([]*signature.Verifier{rm.Public()}); err == nil {
		t.Fatal("a record CI signed passed with only the release manager's key trusted")
	}
	if err := a.CheckDigest(a.Digest()); err != nil {
		t.Fatal(err)
	}

	// Replaced after the check: another record at the same key.
	key := VersionKey("web", "1.0.0")
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, key, bytes.NewReader(append(bytes.Clone(a.Stored), ' '))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign(ctx, b, rm); err == nil || !strings.Contains(err.Error(), "does not hold the record written") {
		t.Fatalf("signing a replaced record: %v", err)
	}
	if keys, err := b.List(ctx, store.SignaturesPrefix(a.Digest())); err != nil || len(keys) != 1 {
		t.Fatalf("the record's signatures after a refused approval: %v, %v; want CI's alone", keys, err)
	}
}
