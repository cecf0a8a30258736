package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// missingCLIConfigChild marks the child process of
// TestAccMissingCLIConfigFile.
const missingCLIConfigChild = "IMMUTABLE_TEST_MISSING_CLI_CONFIG_CHILD"

// TestAccMissingCLIConfigFile: the suite runs on a machine whose
// TF_CLI_CONFIG_FILE names a file that does not exist (this one and CI
// runners export such a variable). The variable is read by TestMain, so the
// test runs this test binary again with it, on itself, where it takes one
// trivial step; without useExistingCLIConfig, OpenTofu 1.12's warning on
// stdout makes plugin-testing fail before the step.
func TestAccMissingCLIConfigFile(t *testing.T) {
	requireAcc(t)
	if os.Getenv(missingCLIConfigChild) != "" {
		dir := t.TempDir()
		file := filepath.Join(dir, "f")
		must(t, os.WriteFile(file, []byte("x"), 0o644))
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: fmt.Sprintf("output \"d\" { value = provider::immutable::digest(%q) }", file),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("d", knownvalue.StringExact(digest.Bytes([]byte("x")).String())),
				},
			}},
		})
		return
	}
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-such.tfrc")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestAccMissingCLIConfigFile$", "-test.count=1", "-test.v")
	// exec.Cmd uses the last of duplicate variables: this process's own
	// TF_CLI_CONFIG_FILE may already be TestMain's empty file.
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+missing, missingCLIConfigChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAccMissingCLIConfigFile") {
		t.Fatalf("the suite with TF_CLI_CONFIG_FILE=%s (missing): %v\n%s", missing, err, out)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the user's missing CLI configuration %s was created (stat: %v)", missing, err)
	}
}

// TestUseExistingCLIConfig: only a variable that names a missing file is
// replaced; an existing configuration (a user's mirror, plugin cache) and
// the CLI's defaults are left alone.
func TestUseExistingCLIConfig(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "user.tfrc")
	must(t, os.WriteFile(existing, []byte(`plugin_cache_dir = "/x"`), 0o644))
	missing := filepath.Join(dir, "missing.tfrc")
	for _, c := range []struct {
		name             string
		tfCLI, terraform string // the two variables before; "-" = unset
		wantVar          string // the variable expected to change, or ""
	}{
		{"existing file", existing, "-", ""},
		{"unset", "-", "-", ""},
		{"missing file", missing, "-", "TF_CLI_CONFIG_FILE"},
		{"missing file, older name", "-", missing, "TERRAFORM_CONFIG"},
		{"older name ignored by the CLI when the newer is set", existing, missing, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for name, v := range map[string]string{"TF_CLI_CONFIG_FILE": c.tfCLI, "TERRAFORM_CONFIG": c.terraform} {
				t.Setenv(name, v) // restores the variable after the test
				if v == "-" {
					must(t, os.Unsetenv(name))
				}
			}
			before := map[string]string{"TF_CLI_CONFIG_FILE": os.Getenv("TF_CLI_CONFIG_FILE"), "TERRAFORM_CONFIG": os.Getenv("TERRAFORM_CONFIG")}
			out := t.TempDir()
			must(t, useExistingCLIConfig(out))
			for name, was := range before {
				got := os.Getenv(name)
				if name != c.wantVar {
					if got != was {
						t.Errorf("%s = %q, want it left as %q", name, got, was)
					}
					continue
				}
				if filepath.Dir(got) != out {
					t.Fatalf("%s = %q, want a file in %s", name, got, out)
				}
				if b, err := os.ReadFile(got); err != nil || len(b) != 0 {
					t.Errorf("%s names %s: %q, %v; want an empty file", name, got, b, err)
				}
			}
			if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the missing file %s was created (stat: %v)", missing, err)
			}
		})
	}
}
