package gc

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestVerboseLog: -v says what each step deleted, per kind, in objects
// and bytes that add up to the report (not how many keys a batch named),
// and why each version stays or goes: a version outside the policy that
// a writer's lease holds is kept by the lease, not "outside the policy".
func TestVerboseLog(t *testing.T) {
	st := store.New(mustFilestore(t))
	w := newWorld(t, st)
	_, err := st.Hold(ctx, release.VersionKey("web", "1.0.0"))
	must(t, err)
	var log strings.Builder
	o := later()
	o.Log, o.BatchSize = &log, 2
	report, err := Collect(ctx, st, policy, o)
	must(t, err)
	text := log.String()
	for _, want := range []string{
		"keep web@1.0.0: outside the policy, but a writer's lease holds it\n",
		"delete web@1.2.0: outside the policy\n",
		"keep web@1.1.0: in a channel's recent history\n",
		"deleted 2 release records (",
		"; wrote 2 tombstones\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "delete web@1.0.0") || strings.Contains(text, "a batch of") {
		t.Errorf("the log says what was not done:\n%s", text)
	}
	if !slices.Contains(report.Kept, "web@1.0.0") || slices.Contains(report.Versions, "web@1.0.0") {
		t.Errorf("the leased version: kept %v, deleted %v", report.Kept, report.Versions)
	}
	// Every "deleted" line's counts, per kind, add up to the report's.
	item := regexp.MustCompile(`(\d+) ([a-z ]+?) \((\d+(?:\.\d)? [KMG]?i?B)\)`)
	sums := map[string]Count{}
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, "deleted "); ok {
			for _, m := range item.FindAllStringSubmatch(rest, -1) {
				n, _ := strconv.Atoi(m[1])
				kind := m[2]
				if n == 1 {
					kind = map[string]string{"release record": KindRelease, "image record": KindImage, "build record": KindAction, "archive reference": KindArchive,
						"listing": KindListing, "blob": KindBlob, "expired lease": KindLease, "stale marker": KindMarker}[kind]
				}
				c := sums[kind]
				c.Objects += n
				sums[kind] = c
			}
		}
	}
	for _, k := range Kinds {
		if sums[k].Objects != report.Deleted[k].Objects {
			t.Errorf("the log's lines add up to %d %s, the report says %d:\n%s", sums[k].Objects, k, report.Deleted[k].Objects, text)
		}
	}
	if len(w.deleted) == 0 || report.Total().Objects == 0 {
		t.Fatal("nothing was deleted: the test tests nothing")
	}
}
