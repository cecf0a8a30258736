package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The releases guide warns: after a failed apply, `output` can show a
// value the apply never made, and `apply -refresh-only` makes it true
// again. These tests hold both halves of that warning against the real
// CLI; if core ever evaluates outputs again after a failure, they fail
// and the guide's warning wants rewriting.

// TestAccFailedApplyOutputs shows that the stale output is core's doing,
// with no provider at all: a terraform_data whose precondition fails at
// apply (the world moved after the plan) stays at its old input in
// state, but the root output referring to it holds the value planned.
func TestAccFailedApplyOutputs(t *testing.T) {
	cli(t)
	dir := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
variable "v" { type = string }
resource "terraform_data" "a" {
  input = var.v
  lifecycle {
    precondition {
      condition     = !fileexists("${path.module}/moved")
      error_message = "The world moved since the plan."
    }
  }
}
output "v" { value = terraform_data.a.input }
`), 0o644))
	cfg := os.DevNull // built-in resources only: no provider to install
	must(t, dir, cfg, "init", "-input=false")
	must(t, dir, cfg, "apply", "-input=false", "-auto-approve", "-var", "v=1.0.2")
	must(t, dir, cfg, "plan", "-input=false", "-var", "v=1.0.4", "-out=tfplan")
	mustDo(t, os.WriteFile(filepath.Join(dir, "moved"), nil, 0o644))
	if out, code := run(t, dir, cfg, "apply", "-input=false", "tfplan"); code == 0 || !strings.Contains(out, "The world moved") {
		t.Fatalf("the apply after the world moved: exit %d, want the precondition's error:\n%s", code, out)
	}
	if got := must(t, dir, cfg, "state", "show", "terraform_data.a"); !strings.Contains(got, `input  = "1.0.2"`) {
		t.Fatalf("after the failed apply, the state does not hold the old input:\n%s", got)
	}
	if got := output(t, dir, cfg, "v"); got != "1.0.4" {
		t.Fatalf("after the failed apply, output v is %q: core no longer keeps the planned 1.0.4; update the "+
			"warning in templates/guides/releases-and-rollback.md.tmpl", got)
	}
	must(t, dir, cfg, "apply", "-input=false", "-refresh-only", "-auto-approve", "-var", "v=1.0.4")
	if got := output(t, dir, cfg, "v"); got != "1.0.2" {
		t.Fatalf("after apply -refresh-only, output v is %q, want the true 1.0.2", got)
	}
}

// TestAccReleaseRaceOutputs is the race the warning is about: two
// workspaces with their own states change release "svc" on one store and
// apply at once (-auto-approve, held at the publish barrier until both
// planned 1.0.2). The loser fails with the provider's error and keeps its
// old version in state, yet its output names 1.0.2, which holds the
// winner's content. apply -refresh-only makes the output true again, and
// the next apply publishes the loser's content as 1.0.3.
func TestAccReleaseRaceOutputs(t *testing.T) {
	cli(t)
	cfg := mirror(t, "immutable_testhooks")
	store := filepath.Join(t.TempDir(), "store")
	write := func(dir, who string) {
		t.Helper()
		mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = %q
}
resource "immutable_release" "svc" {
  name      = "svc"
  artifacts = {}
  metadata  = { who = %q }
}
output "v" { value = immutable_release.svc.version }
`, "file://"+store, who)), 0o644))
	}
	dirs := [2]string{filepath.Join(t.TempDir(), "rA"), filepath.Join(t.TempDir(), "rB")}
	for i, d := range dirs {
		mustDo(t, os.MkdirAll(d, 0o755))
		write(d, fmt.Sprint("before-", i))
		must(t, d, cfg, "init", "-input=false")
		must(t, d, cfg, "apply", "-input=false", "-auto-approve")
		if got, want := output(t, d, cfg, "v"), fmt.Sprint("1.0.", i); got != want {
			t.Fatalf("first apply in %s: version %q, want %q", d, got, want)
		}
	}
	for i, d := range dirs {
		write(d, fmt.Sprint("after-", i))
	}
	results := raceApplies(t, cfg, dirs)
	loser := -1
	for i, r := range results {
		if r.code != 0 {
			if loser != -1 {
				t.Fatalf("both applies failed:\n%s\n%s", results[0].out, results[1].out)
			}
			loser = i
		}
	}
	if loser == -1 {
		t.Fatalf("both applies published, want one to lose the race:\n%s\n%s", results[0].out, results[1].out)
	}
	if out := results[loser].out; !strings.Contains(out, "Version published by another apply") {
		t.Fatalf("the losing apply's error is not the provider's own:\n%s", out)
	}
	winner, d := dirs[1-loser], dirs[loser]
	if got := output(t, winner, cfg, "v"); got != "1.0.2" {
		t.Fatalf("the winner published %q, want 1.0.2", got)
	}
	old := fmt.Sprint("1.0.", loser)
	inState := regexp.MustCompile(fmt.Sprintf(`(?m)^\s*version\s+= %q$`, old))
	if got := must(t, d, cfg, "state", "show", "immutable_release.svc"); !inState.MatchString(got) {
		t.Fatalf("after losing, the state does not hold %s:\n%s", old, got)
	}
	if got := output(t, d, cfg, "v"); got != "1.0.2" {
		t.Fatalf("after losing, output v is %q: core no longer keeps the planned 1.0.2; update the warning in "+
			"templates/guides/releases-and-rollback.md.tmpl", got)
	}
	must(t, d, cfg, "apply", "-input=false", "-refresh-only", "-auto-approve")
	if got := output(t, d, cfg, "v"); got != old {
		t.Fatalf("after apply -refresh-only, output v is %q, want the loser's own %s", got, old)
	}
	must(t, d, cfg, "apply", "-input=false", "-auto-approve")
	if got := output(t, d, cfg, "v"); got != "1.0.3" {
		t.Fatalf("the loser's next apply published %q, want 1.0.3", got)
	}
}
