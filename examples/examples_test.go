// Package examples runs the examples through the real CLI, as a user
// would: the provider built into a filesystem mirror, `init` offline with
// the ordinary source "immutable-infra/immutable", then plan and apply.
package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func cli(t *testing.T) string {
	t.Helper()
	if os.Getenv("TF_ACC") == "" || os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make test does both, with the pinned OpenTofu)")
	}
	if os.Getenv("IMMUTABLE_CACHE_DIR") == "" {
		t.Setenv("IMMUTABLE_CACHE_DIR", t.TempDir()) // the stat cache: keep tests out of yours
	}
	return os.Getenv("TF_ACC_TERRAFORM_PATH")
}

// mirror builds the provider into a filesystem mirror for the test (Go's
// build cache makes all but the first build quick) and returns the CLI
// configuration that installs it. tags are Go build tags.
func mirror(t *testing.T, tags ...string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("../scripts/mirror.sh", dir, strings.Join(tags, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("mirror.sh: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:]))
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-R", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

func run(t *testing.T, dir, cliConfig string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(cli(t), append(args, "-no-color")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func must(t *testing.T, dir, cfg string, args ...string) string {
	t.Helper()
	out, code := run(t, dir, cfg, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// mustDo fails the test on a setup step's error: a step that did not
// happen would make the assertion after it meaningless.
func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	for _, ex := range []string{"quickstart", "resources/immutable_artifact", "resources/immutable_build", "resources/immutable_release"} {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ex")
			copyDir(t, ex, dir)
			if _, err := os.Stat(filepath.Join(dir, "main.tf")); err != nil {
				// Docs examples hold only resources: add the provider block.
				copyFile(t, "provider/provider.tf", filepath.Join(dir, "provider.tf"))
			}
			must(t, dir, cfg, "init", "-input=false")
			must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
			// A second plan is empty: the digests are stable.
			if out, code := run(t, dir, cfg, "plan", "-input=false", "-detailed-exitcode"); code != 0 {
				t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
			}
			if _, err := os.Stat(filepath.Join(dir, ".immutable", "blobs")); err != nil {
				t.Fatalf("the default store ./.immutable was not written: %v", err)
			}
		})
	}
}

// TestAccQuickstartChange is what `make demo` shows: one changed file
// replaces the artifact, and the plan shows the old and new digest and the
// file.
func TestAccQuickstartChange(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, "quickstart", dir)
	must(t, dir, cfg, "init", "-input=false")
	must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
	f, err := os.OpenFile(filepath.Join(dir, "site", "index.html"), os.O_APPEND|os.O_WRONLY, 0)
	mustDo(t, err)
	_, err = f.WriteString("<p>changed</p>\n")
	mustDo(t, err)
	mustDo(t, f.Close())
	out, code := run(t, dir, cfg, "plan", "-input=false", "-detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan exit %d, want 2 (changes)\n%s", code, out)
	}
	for _, want := range []string{"must be replaced", "# forces replacement", `"index.html"`, "-> \"sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAccS3Example validates examples/s3 and applies it on a real S3
// server, with the endpoint given as the example's variable.
func TestAccS3Example(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	dir := filepath.Join(t.TempDir(), "s3")
	copyDir(t, "s3", dir)
	must(t, dir, cfg, "init", "-input=false")
	must(t, dir, cfg, "validate")
	vars := []string{"-var", "store=s3://" + bucket + "/web", "-var", "s3_endpoint=" + srv.Endpoint, "-var", "s3_region=" + srv.Region}
	must(t, dir, cfg, append([]string{"apply", "-input=false", "-auto-approve"}, vars...)...)
	if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, vars...)...); code != 0 {
		t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
	}
	if v := output(t, dir, cfg, "release"); v != "web@1.0.0" {
		t.Fatalf("release %s", v)
	}
}

// TestAccFunctionExamples plans the function examples through the CLI
// with the provider unconfigured.
func TestAccFunctionExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	for _, ex := range []string{"digest", "file_digests"} {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ex")
			copyDir(t, filepath.Join("functions", ex), dir)
			mustDo(t, os.WriteFile(filepath.Join(dir, "versions.tf"), []byte("terraform {\n  required_providers {\n    immutable = { source = \"immutable-infra/immutable\" }\n  }\n}\n"), 0o644))
			must(t, dir, cfg, "init", "-input=false")
			must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
			out := must(t, dir, cfg, "output", "-json")
			if !strings.Contains(out, "sha256:") {
				t.Fatalf("outputs carry no digest:\n%s", out)
			}
		})
	}
}

// TestAccLifecycleExamples validates the yank and channel examples (they
// act on versions that only exist in a user's store).
func TestAccLifecycleExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	for _, ex := range []string{"immutable_yank", "immutable_channel"} {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ex")
			copyDir(t, filepath.Join("resources", ex), dir)
			copyFile(t, "provider/provider.tf", filepath.Join(dir, "provider.tf"))
			must(t, dir, cfg, "init", "-input=false")
			must(t, dir, cfg, "validate")
		})
	}
}

// TestAccDataSourceExamples validates the data source examples (they read
// releases that only exist in a user's store).
func TestAccDataSourceExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	for _, ex := range []string{"immutable_release", "immutable_releases", "immutable_artifact", "immutable_channel"} {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ex")
			copyDir(t, filepath.Join("data-sources", ex), dir)
			copyFile(t, "provider/provider.tf", filepath.Join(dir, "provider.tf"))
			must(t, dir, cfg, "init", "-input=false")
			must(t, dir, cfg, "validate")
		})
	}
}

// planActions plans with args and returns each resource's actions.
func planActions(t *testing.T, dir, cfg string, args ...string) map[string]string {
	t.Helper()
	must(t, dir, cfg, append([]string{"plan", "-input=false", "-out=p.tfplan"}, args...)...)
	out := must(t, dir, cfg, "show", "-json", "p.tfplan")
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &plan); err != nil {
		t.Fatalf("show -json: %v\n%s", err, out)
	}
	actions := map[string]string{}
	for _, rc := range plan.ResourceChanges {
		actions[rc.Address] = strings.Join(rc.Change.Actions, ",")
	}
	return actions
}

func storeObjects(t *testing.T, root string) []string {
	t.Helper()
	var objs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			objs = append(objs, p)
		}
		return nil
	})
	mustDo(t, err)
	return objs
}

func output(t *testing.T, dir, cfg, name string) string {
	t.Helper()
	return strings.TrimSpace(must(t, dir, cfg, "output", "-raw", name))
}

// TestAccRollback runs examples/rollback end to end: publish 1.0.0, change
// a file, publish 1.0.1, then pin 1.0.0: the deployment switches back in
// the plan, and nothing is rebuilt or stored again.
func TestAccRollback(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	dir := filepath.Join(t.TempDir(), "rollback")
	copyDir(t, "rollback", dir)
	store := filepath.Join(dir, ".immutable")
	must(t, dir, cfg, "init", "-input=false")

	must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, dir, cfg, "deployed_version"); v != "1.0.0" {
		t.Fatalf("first deploy: %s", v)
	}
	v1 := strings.TrimSpace(must(t, dir, cfg, "output", "-json", "published_version"))
	// Unchanged: empty plans, with and without refresh.
	for _, args := range [][]string{{}, {"-refresh=false"}} {
		if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, args...)...); code != 0 {
			t.Fatalf("plan %v after publishing is not empty (exit %d)\n%s", args, code, out)
		}
	}

	mustDo(t, os.WriteFile(filepath.Join(dir, "app", "version.txt"), []byte("v2\n"), 0o644))
	must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, dir, cfg, "deployed_version"); v != "1.0.1" {
		t.Fatalf("second deploy: %s (first published %s)", v, v1)
	}
	before := storeObjects(t, store)

	actions := planActions(t, dir, cfg, "-var", "app_version=1.0.0")
	want := map[string]string{
		"immutable_artifact.app":          "no-op",
		"immutable_release.app":           "no-op",
		"terraform_data.deployment":       "update",
		"data.immutable_release.deployed": "read",
	}
	for addr, a := range want {
		if got := actions[addr]; got != a && (a != "read" || got != "") {
			t.Errorf("%s: planned %q, want %q (all: %v)", addr, got, a, actions)
		}
	}
	out := must(t, dir, cfg, "show", "p.tfplan")
	if !strings.Contains(out, "terraform_data.deployment") || !strings.Contains(out, "will be updated in-place") {
		t.Errorf("the rollback plan does not show the deployment switching back:\n%s", out)
	}
	must(t, dir, cfg, "apply", "-input=false", "p.tfplan")
	if v := output(t, dir, cfg, "deployed_version"); v != "1.0.0" {
		t.Fatalf("rollback deployed %s", v)
	}
	if after := storeObjects(t, store); len(after) != len(before) {
		t.Fatalf("the rollback wrote to the store: %d objects before, %d after", len(before), len(after))
	}
}

// TestAccReleaseRace: two applies from two working directories race for
// the same next version of one release on one store. The provider pauses
// both just before the write (a test hook), then lets them go: exactly one
// record is written, the other apply fails with a clear error before
// writing, and nothing is overwritten. With identical content both succeed.
func TestAccReleaseRace(t *testing.T) {
	cli(t)
	cfg := mirror(t, "immutable_testhooks")
	t.Run("file", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		testRace(t, cfg, fmt.Sprintf("store = %q", "file://"+store), func(name string) []string {
			v, _ := filepath.Glob(filepath.Join(store, "releases", name, "versions", "*"))
			return v
		})
	})
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		bucket := srv.NewBucket(t)
		b, err := s3store.New(context.Background(), bucket, "race", srv.Settings())
		if err != nil {
			t.Fatal(err)
		}
		settings := fmt.Sprintf("store = %q\n  s3 {\n    endpoint = %q\n    use_path_style = true\n  }", "s3://"+bucket+"/race", srv.Endpoint)
		testRace(t, cfg, settings, func(name string) []string {
			keys, err := b.List(context.Background(), "releases/"+name+"/versions/")
			if err != nil {
				t.Fatal(err)
			}
			return keys
		})
	})
}

// TestReleaseBuildHasNoTestHooks: the provider as released (no build
// tags) does not contain the publish barrier: the name of its environment
// variable is nowhere in the binary (while the test build has it, so the
// search is meaningful), and with TF_ACC an apply with the variable set
// completes instead of waiting at a barrier nobody opens.
func TestReleaseBuildHasNoTestHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider twice")
	}
	const env = "IMMUTABLE_TEST_PUBLISH_BARRIER"
	binary := func(cfg string) []byte {
		t.Helper()
		// One copy per registry host: HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/.
		bins, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), "mirror", "*", "*", "*", "*", "*", "terraform-provider-immutable_v*"))
		if len(bins) != 2 {
			t.Fatalf("provider binaries in the mirror beside %s: %v", cfg, bins)
		}
		b, err := os.ReadFile(bins[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	release := mirror(t)
	if bytes.Contains(binary(release), []byte(env)) {
		t.Fatalf("the release build contains %s: the test hook is compiled into shipped binaries", env)
	}
	if !bytes.Contains(binary(mirror(t, "immutable_testhooks")), []byte(env)) {
		t.Fatalf("the immutable_testhooks build does not contain %s either: the search proves nothing", env)
	}

	if os.Getenv("TF_ACC") == "" {
		return
	}
	dir := t.TempDir()
	store := filepath.Join(t.TempDir(), "store")
	mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = %q
}
resource "immutable_release" "r" {
  name      = "hooks"
  artifacts = {}
}
`, "file://"+store)), 0o644))
	must(t, dir, release, "init", "-input=false")
	barrier := t.TempDir() // nobody ever writes "go" here
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), "apply", "-input=false", "-auto-approve", "-no-color")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+release, env+"="+barrier)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the apply with %s set did not finish within 2 minutes: the release build waits at the barrier\n%s", env, out)
	}
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if ready, _ := filepath.Glob(filepath.Join(barrier, "*")); len(ready) != 0 {
		t.Fatalf("the release build used the barrier: %v", ready)
	}
}

func testRace(t *testing.T, cfg, storeSettings string, versionsOf func(name string) []string) {
	for _, tc := range []struct {
		name  string
		who   [2]string
		fails int
	}{{"different content", [2]string{"a", "b"}, 1}, {"same content", [2]string{"same", "same"}, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			dirs := [2]string{}
			for i := range dirs {
				dirs[i] = filepath.Join(t.TempDir(), fmt.Sprint(i))
				mustDo(t, os.MkdirAll(dirs[i], 0o755))
				mustDo(t, os.WriteFile(filepath.Join(dirs[i], "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  %s
}
resource "immutable_release" "r" {
  name      = %q
  artifacts = {}
  metadata  = { who = %q }
}
`, storeSettings, name, tc.who[i])), 0o644))
				must(t, dirs[i], cfg, "init", "-input=false")
			}
			results := raceApplies(t, cfg, dirs)
			failed := 0
			for _, r := range results {
				if r.code != 0 {
					failed++
					if !strings.Contains(r.out, "Version published by another apply") || !strings.Contains(r.out, "Plan again") {
						t.Errorf("the losing apply's error is not the provider's own:\n%s", r.out)
					}
				}
			}
			if failed != tc.fails {
				t.Fatalf("%d applies failed, want %d", failed, tc.fails)
			}
			versions := versionsOf(name)
			if len(versions) != 1 || filepath.Base(versions[0]) != "1.0.0" {
				t.Fatalf("records written: %v", versions)
			}
			if tc.fails == 1 {
				// The loser plans again and publishes the next version.
				for _, d := range dirs {
					must(t, d, cfg, "apply", "-input=false", "-auto-approve")
				}
				if versions = versionsOf(name); len(versions) != 2 {
					t.Fatalf("after re-apply: %v", versions)
				}
			}
		})
	}
}

// raceResult is how one of the racing applies ended.
type raceResult struct {
	out  string
	code int
}

// raceApplies runs `apply -auto-approve` in both dirs at once, with the
// provider's publish barrier (a mirror built with immutable_testhooks):
// both plan, stop just before publishing, and are let go together once
// both are there. It returns how each ended, in the order of dirs.
func raceApplies(t *testing.T, cfg string, dirs [2]string) [2]raceResult {
	t.Helper()
	barrier := t.TempDir()
	// The applies end with the test, however it ends: a barrier
	// they still wait at is opened, and they are killed.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		// Best effort: cancel kills the applies whether or not the
		// barrier opens.
		_ = os.WriteFile(filepath.Join(barrier, "go"), nil, 0o644)
		cancel()
	})
	tofu := cli(t)
	type ended struct {
		i int
		r raceResult
	}
	results := make(chan ended, 2)
	for i, d := range dirs {
		go func() {
			cmd := exec.CommandContext(ctx, tofu, "apply", "-input=false", "-auto-approve", "-no-color")
			cmd.Dir = d
			cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cfg, "IMMUTABLE_TEST_PUBLISH_BARRIER="+barrier)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
				out = append(out, err.Error()...)
			}
			results <- ended{i, raceResult{string(out), code}}
		}()
	}
	// Both applies have planned and stopped just before writing: wait
	// for both, for at most a deadline, and stop at
	// once if one ends instead.
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ready, _ := filepath.Glob(filepath.Join(barrier, "ready-*"))
		if len(ready) == 2 {
			break
		}
		select {
		case e := <-results:
			t.Fatalf("an apply ended before the barrier (exit %d):\n%s", e.r.code, e.r.out)
		case <-deadline.C:
			t.Fatalf("the applies did not both reach the barrier within 3 minutes (ready: %v)", ready)
		case <-tick.C:
		}
	}
	mustDo(t, os.WriteFile(filepath.Join(barrier, "go"), nil, 0o644))
	var out [2]raceResult
	for range dirs {
		e := <-results
		out[e.i] = e.r
	}
	return out
}
