package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccInstall is a newcomer's path, as README.md's "Use it in your own
// configuration" tells it: from a fresh HOME, `make install`, then the
// README's configuration in a directory of its own: `init` and `apply`
// with no CLI configuration and no network (every HTTP request of the CLI
// goes to a closed port; a control shows that a provider that is not
// installed locally fails that way). Then the README's note on rebuilding: a second
// `make install` of a different build makes `plan` refuse the lock file's
// checksum, and the `providers lock -fs-mirror` command it gives fixes it.
// The CLI is TF_ACC_TERRAFORM_PATH: OpenTofu in `make test`, Terraform
// when it points at one.
func TestAccInstall(t *testing.T) {
	cli(t)
	home := t.TempDir()
	env := newcomerEnv(t, home)
	install := func(extraEnv ...string) string {
		t.Helper()
		cmd := exec.Command("make", "install")
		cmd.Dir = ".."
		cmd.Env = append(env, extraEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	plugins := filepath.Join(home, ".terraform.d", "plugins")
	for _, host := range []string{"registry.opentofu.org", "registry.terraform.io"} {
		bins, _ := filepath.Glob(filepath.Join(plugins, host, "immutable-infra", "immutable", "0.1.0", "*_*", "terraform-provider-immutable_v0.1.0"))
		if len(bins) != 1 {
			t.Errorf("make install put no provider for %s in %s (found %v)", host, plugins, bins)
		}
	}

	dir := filepath.Join(t.TempDir(), "mine")
	mustDo(t, os.MkdirAll(dir, 0o755))
	mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(readmeConfig(t)), 0o644))
	out := mustNewcomer(t, dir, env, "init", "-no-color", "-input=false")
	if !strings.Contains(out, "Installed immutable-infra/immutable v0.1.0") {
		t.Errorf("init did not install immutable-infra/immutable v0.1.0:\n%s", out)
	}
	mustNewcomer(t, dir, env, "apply", "-no-color", "-input=false", "-auto-approve")
	if d := strings.TrimSpace(mustNewcomer(t, dir, env, "output", "-no-color", "-raw", "digest")); !strings.HasPrefix(d, "sha256:") {
		t.Errorf("output digest is %q", d)
	}

	// The control: with the same environment, a provider found nowhere
	// locally fails for want of the network, so the init above did not
	// use it.
	control := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(control, "main.tf"), []byte(`terraform {
  required_providers {
    other = { source = "immutable-infra/not-installed" }
  }
}
`), 0o644))
	if out, code := newcomer(t, control, env, "init", "-no-color", "-input=false"); code == 0 || !strings.Contains(out, closedPort) {
		t.Fatalf("init of a provider that is not installed locally did not fail on the closed proxy %s (exit %d):\n%s", closedPort, code, out)
	}

	// Another build of 0.1.0 (the release race test's tags give one).
	if out := install("MIRROR_TAGS=immutable_testhooks"); !strings.Contains(out, "replaced a different build of 0.1.0") {
		t.Errorf("make install did not say it replaced a different build:\n%s", out)
	}
	if out, code := newcomer(t, dir, env, "plan", "-no-color", "-input=false"); code == 0 || !strings.Contains(out, "does not match any of the checksums") {
		t.Fatalf("plan with the lock file of the earlier build: exit %d, want the checksum error\n%s", code, out)
	}
	mustNewcomer(t, dir, env, "providers", "lock", "-no-color", "-fs-mirror="+plugins, "immutable-infra/immutable")
	if out, code := newcomer(t, dir, env, "plan", "-no-color", "-input=false", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after providers lock: exit %d, want 0 (no changes)\n%s", code, out)
	}
}

// closedPort is where the CLI's HTTP requests go: nothing listens on port
// 1 of the loopback, so each one fails at once.
const closedPort = "127.0.0.1:1"

// newcomerEnv is this process's environment as a newcomer's shell would
// have it: HOME is home, with no CLI configuration in it; no TF_* or
// XDG_* variable (so no TF_CLI_CONFIG_FILE, no plugin cache, no XDG
// directory of the person running the test). Go keeps this machine's
// caches and settings (their defaults are under HOME) and installs into a
// temporary GOBIN. (exec.Cmd uses the last of duplicate variables.)
func newcomerEnv(t *testing.T, home string) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOENV").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	goenv := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(goenv) != 4 {
		t.Fatalf("go env printed %q", out)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch up := strings.ToUpper(k); {
		case up == "HOME", strings.HasPrefix(up, "TF_"), strings.HasPrefix(up, "XDG_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"GOCACHE="+goenv[0], "GOMODCACHE="+goenv[1], "GOPATH="+goenv[2], "GOENV="+goenv[3],
		"GOBIN="+t.TempDir(),
		"CHECKPOINT_DISABLE=1",
	)
}

// offline is env with HTTP and HTTPS sent through a proxy on closedPort,
// and no other proxy setting (a NO_PROXY or no_proxy could exempt a host).
func offline(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasSuffix(strings.ToUpper(k), "_PROXY") {
			out = append(out, kv)
		}
	}
	return append(out, "HTTPS_PROXY=http://"+closedPort, "HTTP_PROXY=http://"+closedPort)
}

// readmeConfig is the first hcl block of README.md's "Use it in your own
// configuration": the configuration the test runs is the one a reader
// copies.
func readmeConfig(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	mustDo(t, err)
	const heading = "\n## Use it in your own configuration\n"
	_, section, ok := bytes.Cut(readme, []byte(heading))
	if !ok {
		t.Fatalf("README.md has no %q section", strings.TrimSpace(heading))
	}
	if end := bytes.Index(section, []byte("\n## ")); end >= 0 {
		section = section[:end]
	}
	_, block, ok := bytes.Cut(section, []byte("\n```hcl\n"))
	if ok {
		block, _, ok = bytes.Cut(block, []byte("\n```\n"))
	}
	if !ok || !bytes.Contains(block, []byte(`source  = "immutable-infra/immutable"`)) {
		t.Fatalf("README.md's %q section has no hcl block naming source \"immutable-infra/immutable\"", strings.TrimSpace(heading))
	}
	return string(block) + "\n"
}

// newcomer runs the CLI with args in dir, with env made offline, and
// returns its output and exit code.
func newcomer(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(cli(t), args...)
	cmd.Dir = dir
	cmd.Env = offline(env)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func mustNewcomer(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, code := newcomer(t, dir, env, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}
