package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestAccTrust_laptopWithoutKeyRecordsNoBuild: on a shared S3 store, a
// laptop whose provider has a trust policy but no signing_key (build_cache
// left read-write) runs a step without recording it (an unsigned record
// would be refused by its policy); CI, with the trusted key, then builds
// and records it, signed, and the laptop, in another working directory,
// plans CI's record as a cache hit. The laptop's unsigned record blocked
// CI's plan and its own ("build cache hit refused").
func TestAccTrust_laptopWithoutKeyRecordsNoBuild(t *testing.T) {
	requireAcc(t)
	srv := testserver.StartS3(t)
	e := &env{t: t, s3: srv, bucket: srv.NewBucket(t), dir: filepath.Join(t.TempDir(), "src")}
	{
		ciKey, ci := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
		counter := filepath.Join(t.TempDir(), "runs")
		cfg := func(signing string) string {
			// require_signatures left to its default, true.
			return e.providerBlock(signing, fmt.Sprintf("trust {\n    keys = [file(%q)]\n  }", ciPub)) + fmt.Sprintf(`
resource "immutable_build" "b" {
  command     = ["sh", "-c", "echo run >> \"$COUNTER\"; echo built > out"]
  tools       = ["sh"]
  environment = { COUNTER = %q }
  output      = "out"
}
`, counter)
		}
		laptop, ciCfg := cfg(""), cfg(fmt.Sprintf("signing_key = %q", ciKey))
		runs := func(n int) resource.TestCheckFunc {
			return func(*terraformState) error {
				b, _ := os.ReadFile(counter)
				if got := strings.Count(string(b), "run\n"); got != n {
					return fmt.Errorf("ran %d times, want %d", got, n)
				}
				return nil
			}
		}
		records := func(n int) resource.TestCheckFunc {
			return func(*terraformState) error {
				if got := len(e.actionKeys()); got != n {
					return fmt.Errorf("%d build records, want %d", got, n)
				}
				return nil
			}
		}
		hit := func(want bool) resource.TestCheckFunc {
			return resource.TestCheckResourceAttr("immutable_build.b", "cache_hit", fmt.Sprint(want))
		}
		// The provider's logs carry the plan's warnings (sdk.proto logs
		// each diagnostic): the laptop's plan says why nothing is recorded.
		logs := t.TempDir()
		t.Setenv("TF_ACC_LOG", "DEBUG")
		t.Setenv("TF_LOG", "DEBUG")
		t.Setenv("TF_LOG_PATH_MASK", filepath.Join(logs, "%s.log"))
		warned := func(*terraformState) error {
			files, _ := filepath.Glob(filepath.Join(logs, "*.log"))
			for _, f := range files {
				if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "Build record not written: no signing key") {
					return nil
				}
			}
			return fmt.Errorf("no warning that the build record is not written in the logs (%d files)", len(files))
		}
		// The laptop: runs, records nothing; its next plan is empty.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: laptop, Check: resource.ComposeTestCheckFunc(runs(1), records(0), hit(false), warned)},
				{Config: laptop, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			},
		})
		// CI: no record to refuse, so it builds and records, signed.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps:                    []resource.TestStep{{Config: ciCfg, Check: resource.ComposeTestCheckFunc(runs(2), records(1), hit(false))}},
		})
		// The laptop again, in a new working directory: CI's record is a hit.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: laptop,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("cache_hit"), knownvalue.Bool(true)),
				}},
				Check: resource.ComposeTestCheckFunc(runs(2), records(1), hit(true)),
			}},
		})
	}
}

// TestAccTrust_unsignedWritesRefused: under a policy that requires
// signatures, a provider without signing_key refuses at plan to publish a
// release version, move a channel, yank or un-yank (destroy a yank):
// each record would go unsigned and be refused by the workspace itself.
// The error names signing_key and trust.require_signatures, and nothing
// is written. With require_signatures = false they are written as before.
func TestAccTrust_unsignedWritesRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		e.write(siteFiles)
		keyFile, ci := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "old", Version: "1.0.0"}, time.Now())
		must(t, err)
		_, err = release.SignRecord(ctx, b, ci, store.VersionKey("old", "1.0.0"), e.read(store.VersionKey("old", "1.0.0")), release.KindRelease, nil)
		must(t, err)
		required := trustBlockConfig(true, ciPub)
		refused := func(what string) *regexp.Regexp {
			return regexp.MustCompile(`(?s)Record would be unsigned.*` + what + `.*signing_key.*trust\.require_signatures`)
		}
		yank := "resource \"immutable_yank\" \"old\" {\n  name    = \"old\"\n  version = \"1.0.0\"\n  reason  = \"superseded\"\n}\n"
		nothingWritten := func(*terraformState) error {
			for _, prefix := range []string{"releases/web/", "channels/old/prod/", "releases/old/yanks/"} {
				if keys, err := b.List(ctx, prefix); err != nil || len(keys) > 0 {
					return fmt.Errorf("written under %s: %v (%v)", prefix, keys, err)
				}
			}
			return nil
		}
		channel := func(version string) string {
			return fmt.Sprintf("resource \"immutable_channel\" \"c\" {\n  release = \"old\"\n  channel = \"prod\"\n  version = %q\n}\n", version)
		}
		// An unsigned move, written before the policy: reading it says how
		// a move gets signed (not with `sign`, which takes release versions only).
		_, err = release.WriteMove(ctx, b, "old", "beta", 0, "", "1.0.0", "", time.Now())
		must(t, err)
		beta := "data \"immutable_channel\" \"beta\" {\n  release = \"old\"\n  channel = \"beta\"\n}\n"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config:      e.providerBlock(required) + beta,
					ExpectError: regexp.MustCompile(`(?s)Untrusted record.*channels/old/beta.*apply\s+the\s+configuration\s+managing\s+the\s+channel\s+\(immutable_channel\)\s+with\s+a\s+trusted\s+signing_key`),
				},
				{Config: e.signedConfig(required, ""), ExpectError: refused("release version"), Check: nothingWritten},
				{Config: e.providerBlock(required) + yank, ExpectError: refused("yank entry")},
				{Config: e.providerBlock(required) + channel("1.0.0"), ExpectError: refused("channel move")},
				// Signing: yanked, and the channel moved.
				{Config: e.providerBlock(required, fmt.Sprintf("signing_key = %q", keyFile)) + yank},
				// Without the key, un-yanking (destroying the yank) is refused.
				{Config: e.providerBlock(required), Destroy: true, ExpectError: refused("yank entry")},
				// Not required: written unsigned, as before.
				{Config: e.providerBlock(trustBlockConfig(false, ciPub)) + yank, Destroy: true},
			},
		})
		if keys, err := b.List(ctx, "releases/web/"); err != nil || len(keys) > 0 {
			t.Fatalf("a release was written: %v (%v)", keys, err)
		}
	})
}
