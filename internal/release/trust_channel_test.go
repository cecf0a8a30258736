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
