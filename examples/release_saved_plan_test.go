package examples

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestAccReleaseSavedPlanRace: two working directories share the state of
// a release at 1.0.0, each changes it and saves a plan (1.0.0 -> 1.0.1).
// The first plan applied publishes 1.0.1; the second, applied after, must
// fail with the provider's own message (core plans again at apply, and a
// plan that picks another version than the saved one is core's "inconsistent
// final plan", blamed on the provider), write nothing, and keep the release
// in state: the next plan is a clean update to 1.0.2. The same holds for a
// saved plan applied after the store lost its versions.
func TestAccReleaseSavedPlanRace(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	t.Run("file", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		testSavedPlanRace(t, cfg, fmt.Sprintf("store = %q", "file://"+store), func() {
			mustDo(t, os.RemoveAll(filepath.Join(store, "releases")))
		})
	})
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		bucket := srv.NewBucket(t)
		b, err := s3store.New(context.Background(), bucket, "race", srv.Settings())
		mustDo(t, err)
		settings := fmt.Sprintf("store = %q\n  s3 {\n    endpoint = %q\n    use_path_style = true\n  }", "s3://"+bucket+"/race", srv.Endpoint)
		testSavedPlanRace(t, cfg, settings, func() {
			keys, err := b.List(context.Background(), "releases/")
			mustDo(t, err)
			for _, k := range keys {
				mustDo(t, b.Delete(context.Background(), k))
			}
		})
	})
}

func testSavedPlanRace(t *testing.T, cfg, storeSettings string, wipe func()) {
	write := func(dir, who string) {
		t.Helper()
		mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  %s
}
resource "immutable_release" "cc" {
  name      = "cc"
  artifacts = {}
  metadata  = { who = %q }
}
output "id" { value = immutable_release.cc.id }
`, storeSettings, who)), 0o644))
	}
	c2 := filepath.Join(t.TempDir(), "c2")
	mustDo(t, os.MkdirAll(c2, 0o755))
	write(c2, "one")
	must(t, c2, cfg, "init", "-input=false")
	must(t, c2, cfg, "apply", "-input=false", "-auto-approve")
	if got := output(t, c2, cfg, "id"); got != "cc@1.0.0" {
		t.Fatalf("first apply: id %q", got)
	}
	c3 := filepath.Join(t.TempDir(), "c3")
	copyDir(t, c2, c3) // the same state, as with a shared backend

	write(c2, "two")
	write(c3, "three")
	for _, d := range []string{c2, c3} {
		if out := must(t, d, cfg, "plan", "-input=false", "-out=tfplan"); !strings.Contains(out, `"cc@1.0.1"`) {
			t.Fatalf("plan in %s does not plan 1.0.1:\n%s", d, out)
		}
	}
	must(t, c2, cfg, "apply", "-input=false", "tfplan")

	out, code := run(t, c3, cfg, "apply", "-input=false", "tfplan")
	if code == 0 || !strings.Contains(out, "Version published by another apply") || strings.Contains(out, "inconsistent") {
		t.Fatalf("applying the stale saved plan: exit %d, want the provider's error and no inconsistent plan:\n%s", code, out)
	}
	if got := output(t, c2, cfg, "id"); got != "cc@1.0.1" {
		t.Fatalf("the first apply's release: id %q", got)
	}
	// Nothing of c3's was written, and its state still holds 1.0.0.
	if got := must(t, c3, cfg, "state", "show", "immutable_release.cc"); !strings.Contains(got, `version      = "1.0.0"`) {
		t.Fatalf("after the refused apply, c3's state does not hold cc@1.0.0:\n%s", got)
	}
	// Its output still names what it planned, c2's cc@1.0.1 (core keeps
	// outputs known at plan; see TestAccFailedApplyOutputs) until a
	// refresh-only apply evaluates them again.
	if got := output(t, c3, cfg, "id"); got != "cc@1.0.1" {
		t.Fatalf("after the refused apply, output id is %q: core no longer keeps the planned cc@1.0.1; update the "+
			"warning in templates/guides/releases-and-rollback.md.tmpl", got)
	}
	must(t, c3, cfg, "apply", "-input=false", "-refresh-only", "-auto-approve")
	if got := output(t, c3, cfg, "id"); got != "cc@1.0.0" {
		t.Fatalf("after apply -refresh-only, output id is %q, want cc@1.0.0", got)
	}
	out = must(t, c3, cfg, "plan", "-input=false", "-out=tfplan")
	if !strings.Contains(out, "updated in-place") || !strings.Contains(out, `"cc@1.0.2"`) {
		t.Fatalf("the next plan is not a clean update to 1.0.2:\n%s", out)
	}

	// The store loses the release's versions between plan and apply.
	wipe()
	out, code = run(t, c3, cfg, "apply", "-input=false", "tfplan")
	if code == 0 || !strings.Contains(out, "Release versions deleted since the plan") || strings.Contains(out, "inconsistent") {
		t.Fatalf("applying a saved plan after the store was wiped: exit %d, want the provider's error:\n%s", code, out)
	}
	if got := must(t, c3, cfg, "state", "show", "immutable_release.cc"); !strings.Contains(got, `version      = "1.0.0"`) {
		t.Fatalf("after the refused apply, c3's state does not hold cc@1.0.0:\n%s", got)
	}
}
