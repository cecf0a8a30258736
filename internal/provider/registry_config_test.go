package provider

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// The password the registry's user has, and a wrong one. Both hold "§",
// which nothing else in tofu's output or logs does, so that a pattern
// can say the password is nowhere in them.
const (
	registryUser      = "alice"
	registryPassword  = "right§horse-battery"
	registryWrongPass = "wrong§staple-zebra"
)

// noSecret matches text holding the phrases, in order, and no "§".
func noSecret(phrases ...string) *regexp.Regexp {
	re := says(phrases...).String()
	re = strings.TrimPrefix(re, "(?s)")
	// Spelled \x{a7}: the harness logs the pattern, which the logs' check reads.
	return regexp.MustCompile(`(?s)^[^\x{a7}]*` + strings.ReplaceAll(re, ".*", `[^\x{a7}]*`) + `[^\x{a7}]*$`)
}

// passwordBlock is a registry block for host with registryUser and
// password, as the documentation says to pass it: from a sensitive
// variable (passwordVariable, set here from TF_VAR_registry_password),
// never a literal.
func passwordBlock(t *testing.T, host, password string) string {
	t.Setenv("TF_VAR_registry_password", password)
	return fmt.Sprintf("registry {\n    address = %q\n    username = %q\n    password = var.registry_password\n  }", host, registryUser)
}

// passwordVariable declares the variable passwordBlock reads.
const passwordVariable = `
variable "registry_password" {
  type      = string
  sensitive = true
  default   = null
}
`

// dockerConfig writes a Docker config.json giving user and password for
// host, as `docker login` leaves it, and returns its directory (what
// DOCKER_CONFIG names); without a user, one with no credentials.
func dockerConfig(t *testing.T, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `{"auths": {}}`
	if user != "" {
		cfg = fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// craneWith runs crane with the Docker config in dockerDir.
func craneWith(t *testing.T, dockerDir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testserver.CranePath(t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerDir)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// pushed is a check that the registry serves the image in state (read by
// crane with the user's credentials).
func pushed(t *testing.T, host string) func(*terraformState) error {
	return func(s *terraformState) error {
		want := s.RootModule().Resources["immutable_image.web"].Primary.Attributes["digest"]
		got, err := craneWith(t, dockerConfig(t, host, registryUser, registryPassword), "digest", host+"/web@"+want)
		if err != nil || got != want {
			return fmt.Errorf("the registry does not serve %s: %v %s", want, err, got)
		}
		return nil
	}
}

// isolateCredentials makes the test see no credentials but its own: an
// empty Docker config, no credential environment variables.
func isolateCredentials(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", dockerConfig(t, "", "", ""))
	t.Setenv(EnvRegistryUsername, "")
	t.Setenv(EnvRegistryPassword, "")
}

// secretFreeLogs makes tofu and the provider log at TRACE into a
// directory for the test, and at its end fails if the logs hold a
// password or a basic-auth header made of one.
func secretFreeLogs(t *testing.T) {
	t.Helper()
	var secrets []string
	for _, p := range []string{registryPassword, registryWrongPass} {
		secrets = append(secrets, p, base64.StdEncoding.EncodeToString([]byte(registryUser+":"+p)))
	}
	secrets = append(secrets, "§")
	secretFreeLogsOf(t, []string{"ApplyResourceChange", "sdk.framework"}, secrets)
}

// secretFreeLogsOf makes tofu and the provider log at TRACE into a
// directory for the test, and at its end fails if the logs lack any of
// want (they were not captured) or a line holds any of secrets.
func secretFreeLogsOf(t *testing.T, want, secrets []string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH_MASK", filepath.Join(dir, "%s.log"))
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		var all strings.Builder
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
		log := all.String()
		// The logs are there, tofu's and the provider's.
		for _, want := range want {
			if !strings.Contains(log, want) {
				t.Errorf("the TRACE logs (%d files, %d bytes) lack %q: not captured", len(files), len(log), want)
			}
		}
		for _, line := range strings.Split(log, "\n") {
			leaked := false
			for _, s := range secrets {
				if strings.Contains(line, s) {
					leaked = true
					line = strings.ReplaceAll(line, s, "<SECRET>")
				}
			}
			if leaked {
				t.Errorf("a TRACE log line holds a secret: %.400s", line)
			}
		}
	})
}

// authRegistry starts a registry that wants registryUser's password.
func authRegistry(t *testing.T) string {
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{Users: map[string]string{registryUser: registryPassword}})
	return reg.Host
}

// TestAccRegistryCredentialsRefused: without credentials, and with a
// wrong password, apply fails with the 401 advice (docker login or the
// registry block), names the registry, leaves nothing in state, and the
// password is in neither tofu's output nor the TRACE logs.
func TestAccRegistryCredentialsRefused(t *testing.T) {
	requireAcc(t)
	isolateCredentials(t)
	secretFreeLogs(t)
	host := authRegistry(t)
	advice := []string{`Cannot push the image`, `push blob sha256:`, `to ` + host + `/web:`,
		`the registry refused the credentials (401 Unauthorized): check the username and password for ` + host,
		`username and password in the provider's registry block for it, or`, "`docker login " + host + "`",
		`Nothing was recorded in state`}
	for name, block := range map[string]string{ // the password, "" for no block
		"none":           "",
		"wrong password": registryWrongPass,
	} {
		t.Run(name, func(t *testing.T) {
			if block != "" {
				block = passwordBlock(t, host, block)
			}
			e := newEnv(t)
			e.write(map[string]string{"index.html": "<h1>hi</h1>"})
			config := e.imageWith(block, siteLayer(host+"/web")) + passwordVariable
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{
					{Config: config, ExpectError: noSecret(advice...)},
					{
						Config:             config,
						PlanOnly:           true,
						ExpectNonEmptyPlan: true,
						ConfigPlanChecks:   resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{expectCreate()}},
					},
				},
			})
		})
	}
}

// TestAccRegistryCredentials: the right credentials push, from each place
// they are taken: the registry block, the environment fallback of a block
// without them, and Docker's config.json (DOCKER_CONFIG) for a registry
// without a block. The password is in no log.
func TestAccRegistryCredentials(t *testing.T) {
	requireAcc(t)
	host := authRegistry(t)
	for name, c := range map[string]struct {
		block  string
		env    map[string]string
		docker bool
	}{
		"registry block": {block: "password"},
		"environment": {
			block: fmt.Sprintf("registry {\n    address = %q\n  }", host),
			env:   map[string]string{EnvRegistryUsername: registryUser, EnvRegistryPassword: registryPassword},
		},
		"docker config": {docker: true},
	} {
		t.Run(name, func(t *testing.T) {
			isolateCredentials(t)
			secretFreeLogs(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if c.block == "password" {
				c.block = passwordBlock(t, host, registryPassword)
			}
			if c.docker {
				t.Setenv("DOCKER_CONFIG", dockerConfig(t, host, registryUser, registryPassword))
			}
			e := newEnv(t)
			e.write(map[string]string{"index.html": "<h1>hi</h1>"})
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps:                    []resource.TestStep{{Config: e.imageWith(c.block, siteLayer(host+"/web")) + passwordVariable, Check: pushed(t, host)}},
			})
		})
	}
}

// TestAccRegistryTLS: a registry serving HTTPS with a private CA is
// refused (the certificate is not trusted: give ca_file), then reached
// with ca_file, and the image pushed.
func TestAccRegistryTLS(t *testing.T) {
	isolateCredentials(t)
	e := newEnv(t)
	e.write(map[string]string{"index.html": "<h1>hi</h1>"})
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{TLS: true})
	proxy := reg.Count(t)
	host := proxy.Host()
	withCA := fmt.Sprintf("registry {\n    address = %q\n    ca_file = %q\n  }", host, reg.CAFile)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.imageWith("", siteLayer(host+"/web")),
				ExpectError: says(`Cannot push the image`, `to `+host+`/web:`, `the TLS certificate of `+host+` is not trusted`,
					`give the CA that signed it (a PEM file) as ca_file in the provider's registry block for it`, `x509`),
			},
			{
				Config:           e.imageWith(withCA, siteLayer(host+"/web")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
				Check: func(*terraformState) error {
					for _, c := range proxy.Calls(http.MethodPut, "/manifests/sha256:") {
						if c.Status == http.StatusCreated {
							return nil
						}
					}
					return fmt.Errorf("no manifest was pushed over HTTPS: %v", proxy.Calls("", ""))
				},
			},
		},
	})
}

// nonLoopbackIP is an address of this machine other than loopback, or a
// skip saying there is none.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to serve a plain-HTTP registry on")
	return nil
}

// TestAccRegistryPlainHTTPRefused: a plain-HTTP registry on an address
// other than loopback is refused with advice (serve HTTPS or set
// plain_http), and reached once its block sets plain_http = true.
func TestAccRegistryPlainHTTPRefused(t *testing.T) {
	isolateCredentials(t)
	e := newEnv(t)
	e.write(map[string]string{"index.html": "<h1>hi</h1>"})
	ip := nonLoopbackIP(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	forward(t, l, reg.Endpoint)
	host := l.Addr().String()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.imageWith("", siteLayer(host+"/web")),
				ExpectError: says(`Cannot push the image`, `to `+host+`/web:`, `plain HTTP to `+host+` is refused`,
					`serve it over HTTPS, or set plain_http = true in the provider's registry block for it`, `server gave HTTP response to HTTPS client`),
			},
			{
				Config:           e.imageWith(fmt.Sprintf("registry {\n    address = %q\n    plain_http = true\n  }", host), siteLayer(host+"/web")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
			},
		},
	})
}

// TestAccRegistryBlockRefused: registry blocks that cannot be used are
// refused before anything is read or written, naming the setting.
func TestAccRegistryBlockRefused(t *testing.T) {
	requireAcc(t)
	isolateCredentials(t)
	for name, c := range map[string]struct {
		block string
		err   *regexp.Regexp
	}{
		"scheme": {
			block: `registry {
    address = "https://127.0.0.1:5000"
  }`,
			err: says(`Invalid registry address`, `"https://127.0.0.1:5000" has a scheme: give the host and port only`),
		},
		"path": {
			block: `registry {
    address = "127.0.0.1:5000/team"
  }`,
			err: says(`Invalid registry address`, `"127.0.0.1:5000/team" is not a registry host: give the host and optional port only, without a repository path`),
		},
		"twice": {
			block: `registry {
    address = "127.0.0.1:5000"
  }
  registry {
    address = "127.0.0.1:5000"
  }`,
			err: says(`Registry listed twice`, `"127.0.0.1:5000" has two registry blocks. Keep one.`),
		},
		"username without password": {
			block: `registry {
    address  = "127.0.0.1:5000"
    username = "alice"
  }`,
			err: says(`Incomplete registry credentials`, `username = "alice"`, `The registry block for "127.0.0.1:5000" has a username without a password`, `Set both`),
		},
		"password without username": {
			// Not shown: Terraform would quote the password's line.
			block: `registry {
    address  = "127.0.0.1:5000"
    password = "` + registryWrongPass + `"
  }`,
			err: noSecret(`Incomplete registry credentials`, `a password without a username`, `Set both`),
		},
		"unknown": {
			block: `registry {
    address = terraform_data.registry.output
  }`,
			err: says(`Unknown registry setting`, `depends on a value only known after apply`, `Use a literal, a variable or the environment`),
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.write(map[string]string{"index.html": "<h1>hi</h1>"})
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config:      `resource "terraform_data" "registry" { input = "127.0.0.1:5000" }` + "\n" + e.imageWith(c.block, siteLayer("127.0.0.1:5000/web")),
					PlanOnly:    true,
					ExpectError: c.err,
				}},
			})
			e.storeEmpty()
		})
	}
}
