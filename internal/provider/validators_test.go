package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
)

// TestAccTextOthersRead: a reason, a metadata key or an artifact name
// holding a character that does not show as itself (a line separator, a
// bidirectional override, a zero-width space) is refused at plan, naming
// the attribute and the character, and nothing is written; ordinary
// non-ASCII text is accepted.
func TestAccTextOthersRead(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.backend().Backend()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": digestOfBytes(v)}}, time.Now())
		must(t, err)
	}
	published, err := b.List(ctx, "")
	must(t, err)
	// %q writes the characters as HCL escapes (\u2028): what reaches the
	// provider is the character itself.
	channel := func(reason string) string {
		return fmt.Sprintf(`
resource "immutable_channel" "prod" {
  release = "web"
  channel = "prod"
  version = "1.0.0"
  reason  = %q
}
`, reason)
	}
	yank := func(reason string) string {
		return fmt.Sprintf(`
resource "immutable_yank" "bad" {
  name    = "web"
  version = "1.0.1"
  reason  = %q
}
`, reason)
	}
	publish := func(artifact, key string) string {
		return fmt.Sprintf(`
resource "immutable_release" "web" {
  name      = "web"
  version   = "2.0.0"
  artifacts = { %q = %q }
  metadata  = { %q = "abc" }
}
`, artifact, digestOfBytes("1.0.0"), key)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      e.providerBlock() + channel("ok\u2028Error: fake"),
				ExpectError: regexp.MustCompile(`(?s)Invalid reason.*with immutable_channel.prod.*reason holds U\+2028 LINE\s+SEPARATOR at\s+character 3, a line break.*Remove it`),
			},
			{
				Config:      e.providerBlock() + yank("fixed in 1.0.1\u202E"),
				ExpectError: regexp.MustCompile(`(?s)Invalid reason.*with immutable_yank.bad.*reason holds U\+202E RIGHT-TO-LEFT\s+OVERRIDE at\s+character 15, a\s+bidirectional\s+control`),
			},
			{
				Config:      e.providerBlock() + publish("site", "git\u200Bsha"),
				ExpectError: regexp.MustCompile(`(?s)Invalid metadata key.*with immutable_release.web.*metadata key\s+"git\\u200Bsha"\s+holds\s+U\+200B\s+ZERO\s+WIDTH\s+SPACE\s+at\s+character\s+4`),
			},
			{
				Config:      e.providerBlock() + publish("site\u202Egnp.exe", "git_sha"),
				ExpectError: regexp.MustCompile(`(?s)Invalid artifact name.*artifact\s+name\s+"site\\u202Egnp.exe"\s+holds\s+U\+202E`),
			},
			{
				// Look-alikes in scripts that never join: "прод" with a
				// ZWJ, a Hangul filler, a variation selector on ASCII.
				Config:      e.providerBlock() + publish("site", "пр\u200Dод"),
				ExpectError: regexp.MustCompile(`(?s)Invalid metadata key.*metadata\s+key\s+"пр\\u200Dод"\s+holds\s+U\+200D\s+ZERO\s+WIDTH\s+JOINER`),
			},
			{
				Config:      e.providerBlock() + publish("site\u3164", "git_sha"),
				ExpectError: regexp.MustCompile(`(?s)Invalid artifact name.*artifact\s+name\s+"site\\u3164"\s+holds\s+U\+3164\s+HANGUL\s+FILLER`),
			},
			{
				Config:      e.providerBlock() + yank("ok\uFE0F"),
				ExpectError: regexp.MustCompile(`(?s)Invalid reason.*with immutable_yank.bad.*reason holds U\+FE0F\s+VARIATION\s+SELECTOR-16`),
			},
			{
				PreConfig: func() {
					if keys, err := b.List(ctx, ""); err != nil || len(keys) != len(published) {
						t.Fatalf("refused plans wrote to the store: %v (%v)", keys, err)
					}
				},
				Config: e.providerBlock() + channel(accepted) + yank(accepted),
				Check: func(*terraformState) error {
					m, err := release.Current(ctx, b, "web", "prod")
					if err != nil || m.Reason != accepted {
						return fmt.Errorf("the move's reason reads back %+v (%v)", m, err)
					}
					y, err := release.YankState(ctx, b, "web", "1.0.1")
					if err != nil || y.Reason != accepted {
						return fmt.Errorf("the yank's reason reads back %+v (%v)", y, err)
					}
					return nil
				},
			},
		},
	})
}

// accepted is text in other scripts and emoji (a ZWJ sequence among them).
const accepted = "déploiement ✓ 🚀, откат, 回滚, می\u200Cخواهم 👩\u200D💻"
