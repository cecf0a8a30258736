// Package examples runs the examples through the real CLI, as a user
// would: the provider built into a filesystem mirror, `init` offline with
// the ordinary source "immutable-infra/immutable", then plan and apply.
package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func cli(t *testing.T) string {
	t.Helper()
	if os.Getenv("TF_ACC") == "" || os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make test does both, with the pinned OpenTofu)")
	}
	return os.Getenv("TF_ACC_TERRAFORM_PATH")
}

// mirror builds the provider once per test run.
func mirror(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("../scripts/mirror.sh", dir).CombinedOutput()
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

func TestAccExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	for _, ex := range []string{"quickstart", "resources/immutable_artifact"} {
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
	f, _ := os.OpenFile(filepath.Join(dir, "site", "index.html"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("<p>changed</p>\n")
	f.Close()
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
