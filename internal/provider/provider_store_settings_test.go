package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// Credentials a user might paste into a store URL; the secret holds a
// "/", as AWS secret keys may.
const (
	leakKey    = "AKIALEAKEXAMPLEKEY"
	leakSecret = "leakS3cretPart0/leakS3cretPart1+Zz"
)

// leaks reports where text repeats any part of the pasted credentials.
func leaks(text string) []string {
	var found []string
	for _, part := range []string{leakKey, "leakS3cretPart0", "leakS3cretPart1"} {
		if strings.Contains(text, part) {
			found = append(found, part)
		}
	}
	return found
}

// logEntry starts each entry of a log ("2026-01-02T15:04:05.000Z [TRACE] ...").
var (
	logEntry     = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT`)
	harnessEntry = regexp.MustCompile(`^\S+ \[[A-Z]+\]\s+sdk\.helper_resource:`)
)

// logEverything sends OpenTofu's and the provider's logs, at TRACE, to a
// file the test can read.
func logEverything(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tf.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_ACC_LOG_PATH", p)
	t.Setenv("TF_LOG_PATH_MASK", "")
	return p
}

// TestAccStoreSettings_credentialsInURL: a store URL with user info,
// from the setting or from IMMUTABLE_STORE, stops the plan with a
// diagnostic that says where credentials go; neither the diagnostic nor
// the provider's or OpenTofu's TRACE log repeats the key or the secret.
func TestAccStoreSettings_credentialsInURL(t *testing.T) {
	requireAcc(t)
	url := "s3://" + leakKey + ":" + leakSecret + "@bucket/team"
	for name, setup := range map[string]func(t *testing.T) string{
		"setting": func(t *testing.T) string {
			t.Setenv(EnvStore, "")
			return "provider \"immutable\" {\n  store = \"" + url + "\"\n}\n"
		},
		EnvStore: func(t *testing.T) string {
			t.Setenv(EnvStore, url)
			return "provider \"immutable\" {}\n"
		},
	} {
		t.Run(name, func(t *testing.T) {
			testserver.NoCredentials(t)
			logPath := logEverything(t)
			config := setup(t)
			var got string
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				ErrorCheck: func(err error) error {
					got = err.Error()
					return nil
				},
				Steps: []resource.TestStep{{Config: config + emptyRelease, PlanOnly: true, ExpectNonEmptyPlan: true}},
			})
			want := regexp.MustCompile(`(?s)Credentials in the store URL.*s3://REDACTED@bucket/team.*holds\s+user\s+info.*"s3://bucket/team".*AWS_ACCESS_KEY_ID.*AWS_PROFILE.*s3\.profile`)
			if !want.MatchString(got) {
				t.Fatalf("want a diagnostic refusing the credentials, got (empty: the plan did not fail):\n%s", got)
			}
			// Not even OpenTofu's quote of the configuration line: the
			// diagnostic is not attached to the attribute.
			if l := leaks(got); l != nil {
				t.Errorf("the diagnostic repeats %v:\n%s", l, got)
			}
			log, err := os.ReadFile(logPath)
			if err != nil || !strings.Contains(string(log), "ConfigureProvider") {
				t.Fatalf("the log at %s holds no provider calls (%v): the test would prove nothing", logPath, err)
			}
			for _, entry := range logEntry.Split(string(log), -1) {
				// The test harness logs the configuration and OpenTofu's
				// output, both of which quote the user's own line.
				if harnessEntry.MatchString(entry) {
					continue
				}
				if l := leaks(entry); l != nil {
					t.Errorf("the log repeats %v:\n%s", l, entry)
				}
			}
		})
	}
}

// TestAccStoreSettings_noCredentials: with no AWS credentials anywhere,
// the plan stops saying so and where to set them, not blaming the
// endpoint.
func TestAccStoreSettings_noCredentials(t *testing.T) {
	e := newS3Env(t)
	testserver.NoCredentials(t)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      e.providerBlock() + emptyRelease,
			ExpectError: regexp.MustCompile(`(?s)no\s+AWS\s+credentials\s+were\s+found.*AWS_ACCESS_KEY_ID.*AWS_PROFILE.*s3\.profile`),
		}},
	})
}

// TestAccStoreSettings_tilde: file://~/x is refused with the pathexpand
// fix, and no directory named "~" is created.
func TestAccStoreSettings_tilde(t *testing.T) {
	requireAcc(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tilde := filepath.Join(wd, "~") // under plugin-testing relative paths resolve here
	if _, err := os.Lstat(tilde); err == nil {
		t.Fatalf("%s exists before the test", tilde)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tilde) }) // made by a provider with the bug; cleanup only
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: "provider \"immutable\" {\n  store = \"file://~/immutable-test-store\"\n}\n" + `
resource "immutable_artifact" "a" {
  content = "x"
}
`,
			ExpectError: regexp.MustCompile(`(?s)Invalid store URL.*starts\s+with\s+"~".*store\s+=\s+"file://\$\{pathexpand\("~/immutable-test-store"\)\}"`),
		}},
	})
	if _, err := os.Lstat(tilde); err == nil {
		t.Fatalf("a directory named ~ was created in %s", wd)
	}
}

// TestAccStoreSettings_privateStore: a store the provider creates is
// readable by its owner only, even though its blobs are 0444 copies of
// the sources; a store directory that exists keeps its mode.
func TestAccStoreSettings_privateStore(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		e := newEnv(t)
		e.write(map[string]string{"secret.env": "TOKEN=s3cr3t\n"})
		must(t, os.Chmod(filepath.Join(e.dir, "secret.env"), 0o600))
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: e.artifactConfig(e.dir),
				Check: func(*terraformState) error {
					return wantMode(e.store, 0o700)
				},
			}},
		})
	})
	t.Run("existing", func(t *testing.T) {
		e := newEnv(t)
		e.write(map[string]string{"index.html": "<h1>shared</h1>\n"})
		if err := os.Mkdir(e.store, 0o755); err != nil {
			t.Fatal(err)
		}
		must(t, os.Chmod(e.store, 0o755)) // whatever the umask
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: e.artifactConfig(e.dir),
				Check: func(*terraformState) error {
					return wantMode(e.store, 0o755)
				},
			}},
		})
	})
}

func wantMode(dir string, want os.FileMode) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != want {
		return fmt.Errorf("the store directory %s is %v, want %v", dir, fi.Mode().Perm(), want)
	}
	return nil
}

// TestStoreDescriptionNamesEveryScheme: the `store` attribute's
// description (and so the generated docs) says how to write each scheme
// the store accepts.
func TestStoreDescriptionNamesEveryScheme(t *testing.T) {
	desc := providerSchema().Attributes["store"].GetMarkdownDescription()
	for _, s := range storeurl.Schemes {
		if !strings.Contains(desc, "`"+s) {
			t.Errorf("the store description does not name %s: %s", s, desc)
		}
	}
}
