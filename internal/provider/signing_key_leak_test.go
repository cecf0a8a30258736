package provider

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccSigningKey_notEchoed: a private key given where a path is
// expected (signing_key = file("key.pem"), or IMMUTABLE_SIGNING_KEY_FILE
// holding the PEM) is refused with a message saying where the PEM goes,
// and neither the diagnostics nor any TRACE log line holds the key; a
// path given where the PEM is expected (IMMUTABLE_SIGNING_KEY) says to
// use IMMUTABLE_SIGNING_KEY_FILE or signing_key. The key was echoed in
// "Cannot read the file \"-----BEGIN PRIVATE KEY-----\nMC4...\"".
func TestAccSigningKey_notEchoed(t *testing.T) {
	e := newEnv(t)
	e.write(siteFiles)
	keyFile, _ := writeSigningKey(t, t.TempDir())
	pem, err := os.ReadFile(keyFile)
	must(t, err)
	var secrets []string
	for _, line := range strings.Split(string(pem), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line, line[:24])
		}
	}
	secretFreeLogsOf(t, []string{"ConfigureProvider", "sdk.framework"}, secrets)
	t.Setenv(EnvSigningKey, "")
	t.Setenv(EnvSigningKeyFile, "")
	notEchoed := func(want string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)` + want)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      e.signedConfig(fmt.Sprintf("signing_key = file(%q)", keyFile), ""),
				ExpectError: notEchoed(`Signing key given instead of its path.*signing_key.*takes\s+a\s+path\s+to\s+the\s+key\s+file;\s+to\s+pass\s+the\s+PEM\s+itself\s+use\s+the\s+IMMUTABLE_SIGNING_KEY\s+environment`),
			},
			{
				PreConfig:   func() { t.Setenv(EnvSigningKeyFile, string(pem)) },
				Config:      e.signedConfig("", ""),
				ExpectError: notEchoed(`Signing key given instead of its path.*IMMUTABLE_SIGNING_KEY_FILE\s+takes\s+a\s+path.*IMMUTABLE_SIGNING_KEY\s+environment`),
			},
			{
				PreConfig:   func() { t.Setenv(EnvSigningKeyFile, ""); t.Setenv(EnvSigningKey, keyFile) },
				Config:      e.signedConfig("", ""),
				ExpectError: notEchoed(`Signing key path given instead of the key.*looks\s+like\s+a\s+path.*use\s+IMMUTABLE_SIGNING_KEY_FILE\s+or\s+signing_key`),
			},
		},
	})
}
