package provider

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// withS3Setting adds a setting to the s3 block of a provider block.
func withS3Setting(block, setting string) string {
	return strings.Replace(block, "use_path_style = true", "use_path_style = true\n    "+setting, 1)
}

// TestAccS3_lostAnswerOfAChannelMove: a channel move reaches the server
// and is written, and the connection drops before its answer comes back;
// the SDK sends it again and meets the move. The apply succeeds (before,
// it failed saying another apply had moved the channel and nothing was
// written), the history has the one move, and the next plan is empty.
func TestAccS3_lostAnswerOfAChannelMove(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	b := e.backend().Backend()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
		must(t, err)
	}
	second := "/" + e.bucket + "/team/releases/channels/web/prod/moves/0000000002"
	proxy := e.s3.Faulty(t, func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPut && c.Path == second && tries == 0 {
			return testserver.LoseAnswer
		}
		return testserver.Pass
	})
	e.endpoint = proxy.Endpoint
	cfg := func(v string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
  version = %q
  reason  = "promoted"
}
`, v)
	}
	const prod = "immutable_channel.prod"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg("1.0.0")},
			{
				Config: cfg("1.0.1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prod, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(prod, tfjsonpath.New("move"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(prod, tfjsonpath.New("previous_version"), knownvalue.StringExact("1.0.0")),
				},
				Check: func(*terraformState) error {
					tries := proxy.Calls(http.MethodPut, second)
					if len(tries) < 2 || tries[0].Fault != testserver.LoseAnswer {
						return fmt.Errorf("the move was sent %d times (%v): its answer was not lost and retried", len(tries), tries)
					}
					hist, err := release.History(ctx, b, "web", "prod", 0)
					if err != nil || len(hist) != 2 || hist[1].To != "1.0.1" || hist[1].Reason != "promoted" {
						return fmt.Errorf("history %v, %v; want the first move and this one", hist, err)
					}
					return nil
				},
			},
			{
				Config: cfg("1.0.1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// TestAccS3_retryBudget: `s3.max_attempts` is the retry budget. With 1,
// a publish through a server that asks it to slow down fails part-way,
// saying the network or the server failed, not the settings, and that a
// re-run is safe; the re-run, with the default budget, sends only the
// files still missing. An out-of-range budget is refused at plan.
func TestAccS3_retryBudget(t *testing.T) {
	e := newS3Env(t)
	const n = 300
	manyFiles(t, e.dir, n)
	// After the first 100 files, every first try of a file is answered 503
	// SlowDown: with retries, each goes through on its second try.
	var sent atomic.Int64
	busy := func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPut && strings.Contains(c.Path, "/blobs/") && tries == 0 && sent.Add(1) > 100 {
			return testserver.SlowDown
		}
		return testserver.Pass
	}
	proxy := e.s3.Faulty(t, busy)
	e.endpoint = proxy.Endpoint
	missing := map[string]bool{}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      withS3Setting(e.artifactConfig(e.dir), "max_attempts = 0"),
				ExpectError: regexp.MustCompile(`(?s)s3\.max_attempts.*between 1 and 100`),
			},
			{
				Config: withS3Setting(e.artifactConfig(e.dir), "max_attempts = 1"),
				ExpectError: regexp.MustCompile(`(?s)Cannot write to the store.*answered\s+SlowDown.*retries\s+are\s+off.*` +
					`The\s+network\s+or\s+the\s+server\s+failed.*Re-running\s+apply\s+is\s+safe.*only\s+what\s+is\s+still\s+missing\s+is\s+sent.*` +
					`s3\.max_attempts`),
			},
			{
				PreConfig: func() {
					// What the failed apply left: some files, no listing.
					keys, err := e.backend().Backend().List(context.Background(), "")
					must(t, err)
					for _, k := range keys {
						if strings.HasPrefix(k, "trees/") {
							t.Fatalf("the failed publish stored its listing %s", k)
						}
					}
					m, err := digest.HashTree(context.Background(), e.dir, digest.Options{})
					must(t, err)
					for _, en := range m.Entries {
						ok, err := e.backend().HasBlob(context.Background(), en.SHA256)
						must(t, err)
						if !ok {
							missing["/"+e.bucket+"/team/releases/"+store.BlobKey(en.SHA256)] = true
						}
					}
					if len(missing) == 0 || len(missing) == n {
						t.Fatalf("%d of %d files missing after the failed apply; want it to have failed part-way", len(missing), n)
					}
					proxy.Reset()
				},
				Config: e.artifactConfig(e.dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(site, plancheck.ResourceActionCreate),
				}},
				Check: func(*terraformState) error {
					var again, stored int
					for _, c := range proxy.Calls(http.MethodPut, "/blobs/") {
						switch {
						case missing[c.Path] && c.Fault == testserver.Pass:
							again++
						case !missing[c.Path]:
							stored++
						}
					}
					t.Logf("%d files missing; the re-run sent %d of them and %d stored already", len(missing), again, stored)
					// The first file is sent to tell a re-run from a first
					// publish; after its answer, only what is missing.
					if again != len(missing) || stored > 1 {
						return fmt.Errorf("the re-run sent %d of the %d missing files and %d stored ones; want only the missing ones", again, len(missing), stored)
					}
					return nil
				},
			},
		},
	})
}
