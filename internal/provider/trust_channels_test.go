package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
)

// TestAccTrustChannels: with trust.channels = { prod = [rm] }, planning
// a move of prod to a version only CI signed is refused, naming the
// channel, the version, the key IDs required and found and the sign
// command; once the release manager countersigns it the move plans and
// applies. The channel data source refuses a version a required channel
// points to without the approval; an invalid channel key is an error
// naming trust.channels["prod"][0].
func TestAccTrustChannels(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		keys := t.TempDir()
		_, ci := writeSigningKey(t, t.TempDir())
		_, rm := writeSigningKey(t, t.TempDir())
		ciPub, rmPub := writePublicKey(t, keys, "ci.pub", ci), writePublicKey(t, keys, "rm.pub", rm)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, v := range []string{"1.0.0", "2.0.0"} {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v}, now)
			must(t, err)
			_, err = release.Countersign(ctx, b, ci, "web", v)
			must(t, err)
		}
		// live points to 2.0.0, which only CI signed.
		_, err := release.WriteMove(ctx, b, "web", "live", 0, "", "2.0.0", "", now)
		must(t, err)

		trust := fmt.Sprintf("trust {\n    keys = [file(%q)]\n    require_signatures = false # the moves here are written unsigned\n    channels = {\n      prod = [file(%q)]\n      live = [file(%q)]\n    }\n  }", ciPub, rmPub, rmPub)
		prod := "resource \"immutable_channel\" \"prod\" {\n  release = \"web\"\n  channel = \"prod\"\n  version = \"1.0.0\"\n}\n"
		live := "data \"immutable_channel\" \"live\" {\n  release = \"web\"\n  channel = \"live\"\n}\n"
		refused := func(channel, version string) *regexp.Regexp {
			words := []string{"Version not approved for the channel", "channel " + channel, rm.KeyID(), "web@" + version,
				ci.KeyID(), "terraform-provider-immutable sign --key rm-key.pem"}
			for i, w := range words {
				// Terraform wraps the detail at spaces.
				words[i] = strings.ReplaceAll(regexp.QuoteMeta(w), " ", `\s+`)
			}
			return regexp.MustCompile(`(?s)` + strings.Join(words, ".*"))
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config:      e.providerBlock("trust {\n    channels = { prod = [\"not a key\"] }\n  }") + prod,
					ExpectError: regexp.MustCompile(`(?s)Invalid trusted key.*trust\.channels\["prod"\]\[0\].*no PEM block`),
				},
				{
					// A key no channel has would leave prod unguarded: refused.
					Config:      e.providerBlock(fmt.Sprintf("trust {\n    keys = [file(%q)]\n    channels = { \"web/prod\" = [file(%q)] }\n  }", ciPub, rmPub)) + prod,
					ExpectError: regexp.MustCompile(`(?s)Invalid channel in trust\.channels.*trust\.channels\["web/prod"\].*not a valid channel\s+name.*without\s+its\s+release`),
				},
				{Config: e.providerBlock(trust) + prod, ExpectError: refused("prod", "1.0.0")},
				{Config: e.providerBlock(trust) + live, ExpectError: refused("live", "2.0.0")},
				// Without the requirement, CI's signature suffices.
				{Config: e.providerBlock(trustBlockConfig(false, ciPub)) + live, Check: resource.TestCheckResourceAttr("data.immutable_channel.live", "version", "2.0.0")},
				{
					PreConfig: func() {
						_, err := release.Countersign(ctx, b, rm, "web", "1.0.0")
						must(t, err)
					},
					Config: e.providerBlock(trust) + prod,
					Check:  resource.TestCheckResourceAttr("immutable_channel.prod", "version", "1.0.0"),
				},
			},
		})
	})
}
