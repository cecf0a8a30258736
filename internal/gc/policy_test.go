package gc

import (
	"slices"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestPrereleases: keep-last counts stable versions (what constraints and
// "latest" resolve to); a pre-release above every stable version is the
// next release in the making and stays; one below a stable version goes
// like any other.
func TestPrereleases(t *testing.T) {
	st := store.New(mustFilestore(t))
	b := st.Backend()
	vs := []string{"1.0.0", "1.1.0-rc.1", "1.1.0", "1.2.0", "2.0.0-beta.1", "2.0.0-rc.1"}
	for _, v := range vs {
		sum := putBlob(t, st, "bin "+v+"\n")
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "app", Version: v, Artifacts: map[string]string{"bin": sum.String()}}, longAgo)
		must(t, err)
	}
	expire(t, st)
	p := policy
	p.KeepLast = 1
	report, err := Collect(ctx, st, p, later())
	must(t, err)
	// 2.0.0-rc.1: the highest; 2.0.0-beta.1: a pre-release above every
	// stable version; 1.2.0: the one highest stable. 1.1.0-rc.1 is below
	// a stable version and goes.
	wantGone := []string{"app@1.0.0", "app@1.1.0", "app@1.1.0-rc.1"}
	wantKept := []string{"app@1.2.0", "app@2.0.0-beta.1", "app@2.0.0-rc.1"}
	if !slices.Equal(sorted(report.Versions), wantGone) || !slices.Equal(sorted(report.Kept), wantKept) {
		t.Fatalf("deleted %v, kept %v; want %v and %v", report.Versions, report.Kept, wantGone, wantKept)
	}
}
