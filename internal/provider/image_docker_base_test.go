package provider

import (
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestAccImageOnDockerBase: an image on a Docker (schema 2) base of
// linux/arm64/v8, with platform "linux/arm64" as the user writes it, is
// pushed and recorded (the record said OCI media types for its layers and
// every such apply failed), its platform stays as written (it was planned
// as the base's "linux/arm64/v8": "Provider produced invalid plan"), and
// moving it to an OCI base is a plain replacement (the Docker-typed
// layers in state were refused at plan).
func TestAccImageOnDockerBase(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	img, err := random.Image(512, 1) // Docker media types
	must(t, err)
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg.OS, cfg.Architecture, cfg.Variant = "linux", "arm64", "v8"
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	r, err := name.ParseReference(reg.Host + "/docker-base:1")
	must(t, err)
	must(t, remote.Write(r, img))
	d, err := img.Digest()
	must(t, err)
	dockerBase := reg.Host + "/docker-base@" + d.String()
	ociBase := reg.Host + "/oci-base@" + pushBase(t, reg.Host+"/oci-base:1", "linux/arm64")["linux/arm64"]

	e.write(map[string]string{"index.html": "<h1>on a Docker base</h1>"})
	config := func(base string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  base       = %q
  platform   = "linux/arm64"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
}
`, e.dir, reg.Host, base)
	}
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config(dockerBase),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionCreate),
					capturePlanned("immutable_image.web", "digest", &planned),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("platform"), knownvalue.StringExact("linux/arm64")),
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("media_type"), knownvalue.StringExact("application/vnd.docker.distribution.manifest.v2+json")),
				},
				Check: func(*terraformState) error {
					ref := reg.Host + "/web@" + planned
					if got := crane(t, "digest", ref); got != planned {
						return fmt.Errorf("registry serves %s, plan said %s", got, planned)
					}
					crane(t, "validate", "--remote", ref)
					return nil
				},
			},
			{
				Config: config(dockerBase),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				Config: config(ociBase),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionReplace),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("media_type"), knownvalue.StringExact("application/vnd.oci.image.manifest.v1+json")),
				},
			},
		},
	})
}
