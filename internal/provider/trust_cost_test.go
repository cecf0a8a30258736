package provider

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
)

// TestAccTrust_planCost: planning data.immutable_release under a trust
// policy, through tofu against an S3 store, costs the same few extra
// requests (counted by a proxy) whether the version has 1 artifact or
// 100: one list of the record's signatures and one read of each, per
// operation; nothing per artifact or file.
func TestAccTrust_planCost(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	b := e.backend().Backend()
	_, ci := writeSigningKey(t, t.TempDir())
	_, rm := writeSigningKey(t, t.TempDir())
	ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sizes := map[string]int{"1.0.0": 1, "2.0.0": 100}
	for v, n := range sizes {
		arts := map[string]string{}
		for i := range n {
			name := fmt.Sprintf("a%03d.zip", i)
			arts[name] = digest.Bytes([]byte(v + name)).String()
		}
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: arts}, now)
		must(t, err)
		for _, s := range []*signature.Signer{ci, rm} { // CI signs; a release manager countersigns
			_, err := release.Countersign(ctx, b, s, "web", v)
			must(t, err)
		}
	}
	counter := e.s3.Count(t)
	e.endpoint = counter.Endpoint
	// plan runs a plan-only step (tofu plans twice: the plan, and the
	// plan after it that must be empty) and returns the requests it made
	// and how many times the record was read.
	plan := func(policy, version string) (requests, reads int) {
		t.Helper()
		counter.Reset()
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps:                    []resource.TestStep{{Config: e.providerBlock(policy) + readRelease(version), PlanOnly: true}},
		})
		if per := append(counter.Calls("", "/blobs/"), counter.Calls("", "/trees/")...); len(per) != 0 {
			t.Errorf("reading web@%s requested artifacts: %v", version, per)
		}
		return len(counter.Calls("", "")), len(counter.Calls(http.MethodGet, release.VersionKey("web", version)))
	}
	extra := map[string]int{}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		none, reads := plan("", v)
		with, readsWith := plan(trustBlockConfig(true, ciPub), v)
		extra[v] = with - none
		t.Logf("%d artifacts: %d requests without a policy, %d with one: %d extra over %d reads of the record", sizes[v], none, with, extra[v], reads)
		// Under the policy, each read (one per plan) lists the record's
		// signatures once and reads each of its two once: 3 requests.
		if reads != 2 || readsWith != reads || extra[v] != 3*reads {
			t.Errorf("web@%s (%d artifacts): %d extra requests under a policy over %d reads of the record (%d without it); want 3 per read, 2 reads",
				v, sizes[v], extra[v], readsWith, reads)
		}
	}
	if extra["1.0.0"] != extra["2.0.0"] {
		t.Errorf("extra requests under a policy: %d with 1 artifact, %d with 100; want the same", extra["1.0.0"], extra["2.0.0"])
	}
}
