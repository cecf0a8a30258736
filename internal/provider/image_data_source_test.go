package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestAccImageDataSourcePlatformOfAnImage: with platform set, a name
// that resolves to one image manifest (not an index) is that platform's
// image or an error naming the platform it is for — never an image of
// another platform handed on as the one asked for (an amd64 image
// deployed to arm64 nodes fails only when it runs).
func TestAccImageDataSourcePlatformOfAnImage(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	amd64 := pushBase(t, reg.Host+"/base:single", "linux/amd64")["linux/amd64"]
	config := func(platform string) string {
		return e.providerBlock() + fmt.Sprintf(`
data "immutable_image" "base" {
  name     = "%s/base:single"
  platform = %q
}
`, reg.Host, platform)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      config("linux/arm64"),
				ExpectError: regexp.MustCompile(`(?s)Platform not in the image.*base:single is an image for\s+linux/amd64,\s+not\s+linux/arm64`),
			},
			{
				Config: config("linux/amd64"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.immutable_image.base", tfjsonpath.New("digest"), knownvalue.StringExact(amd64)),
					statecheck.ExpectKnownValue("data.immutable_image.base", tfjsonpath.New("ref"), knownvalue.StringExact(reg.Host+"/base@"+amd64)),
				},
			},
		},
	})
}
