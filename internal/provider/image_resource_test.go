package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// imageConfig is an artifact of the env's source dir put in an image of
// repo, pushed through the counting proxy at host.
func imageConfig(e *env, host, extra string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  layers = [{
    digest = immutable_artifact.site.digest
    path   = "/srv/www"
  }]
  config = {
    entrypoint = ["/bin/server"]
    env        = { PORT = "8080" }
  }
  %s
}
`, e.dir, host, extra)
}

// crane runs the crane CLI against the test registry.
func crane(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testserver.CranePath(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestAccImage: the digest is known at plan and is what the registry
// serves (crane, an independent client, says so and validates the
// image); an unchanged image plans with no registry request; one changed
// file replaces the image and uploads one layer blob; tags move in place.
func TestAccImage(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	host := proxy.Host()
	e.write(map[string]string{"index.html": "<h1>v1</h1>", "css/site.css": "body{}"})
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: imageConfig(e, host, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:[0-9a-f]{64}$`))),
					plancheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("ref"), knownvalue.StringRegexp(regexp.MustCompile(`^`+regexp.QuoteMeta(host)+`/web@sha256:`))),
					capturePlanned("immutable_image.web", "digest", &planned),
				}},
				Check: func(s *terraformState) error {
					got := crane(t, "digest", host+"/web@"+planned)
					if got != planned {
						return fmt.Errorf("registry serves %s, plan said %s", got, planned)
					}
					crane(t, "validate", "--remote", host+"/web@"+planned)
					// The store records what the image's layers are made of.
					sum, err := digest.Parse(planned)
					if err != nil {
						return err
					}
					rec, err := image.GetRecord(context.Background(), e.backend(), sum)
					if err != nil {
						return fmt.Errorf("no image record: %w", err)
					}
					if len(rec.Layers) != 1 || rec.Layers[0].Tree != digestOf(t, e.dir) || rec.Layers[0].Path != "/srv/www" {
						return fmt.Errorf("image record layers %+v, want the site at /srv/www", rec.Layers)
					}
					cfg := crane(t, "config", host+"/web@"+planned)
					if !strings.Contains(cfg, `"Entrypoint":["/bin/server"]`) || !strings.Contains(cfg, `"PORT=8080"`) {
						return fmt.Errorf("config %s lacks the entrypoint or env", cfg)
					}
					proxy.Reset()
					return nil
				},
			},
			{
				// Unchanged: an empty plan, and not one request to the registry.
				Config: imageConfig(e, host, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					noCalls(proxy),
				}},
			},
			{
				PreConfig: func() {
					e.write(map[string]string{"index.html": "<h1>v2</h1>"})
					proxy.Reset()
				},
				Config: imageConfig(e, host, `tags = ["latest"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionReplace),
					plancheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
				}},
				Check: func(*terraformState) error {
					// One layer blob, the config blob, the manifest, the tag.
					if n := len(proxy.Calls("PUT", "/blobs/uploads/")); n != 2 {
						return fmt.Errorf("%d blob uploads completed, want 2 (the changed layer and the config): %v", n, proxy.Calls("", ""))
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("tags"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("latest")})),
				},
			},
			{
				// Tags alone: an in-place update, the image untouched.
				Config: imageConfig(e, host, `tags = ["latest", "stable"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionUpdate),
				}},
				Check: func(s *terraformState) error {
					want := s.RootModule().Resources["immutable_image.web"].Primary.Attributes["digest"]
					if got := crane(t, "digest", host+"/web:stable"); got != want {
						return fmt.Errorf("stable points at %s, want %s", got, want)
					}
					return nil
				},
			},
		},
	})
}

// planCheck is a plan check written as a function.
type planCheck func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse)

func (f planCheck) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f(ctx, req, resp)
}

// capturePlanned stores the planned value of attr of addr in *into.
func capturePlanned(addr, attr string, into *string) plancheck.PlanCheck { //nolint:unparam // any attribute, digests so far
	return planCheck(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		for _, rc := range req.Plan.ResourceChanges {
			if rc.Address != addr {
				continue
			}
			after, _ := rc.Change.After.(map[string]any)
			if v, ok := after[attr].(string); ok {
				*into = v
				return
			}
		}
		resp.Error = fmt.Errorf("%s.%s is not known in the plan", addr, attr)
	})
}

// noCalls fails when the registry behind proxy was asked anything since
// its last Reset.
func noCalls(proxy *testserver.Counter) plancheck.PlanCheck {
	return planCheck(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		if calls := proxy.Calls("", ""); len(calls) > 0 {
			resp.Error = fmt.Errorf("the plan made %d registry requests, want none: %v", len(calls), calls)
		}
	})
}

// TestAccImageBadLayerCacheEntry: the machine's layer cache is a hint. An
// entry that lies about a layer makes the plan show a wrong digest; apply
// encodes the layer again, refuses to push, claims nothing in state and
// drops the entry, so the next plan is right and its apply pushes.
func TestAccImageBadLayerCacheEntry(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	e.write(map[string]string{"index.html": "<h1>cached</h1>"})
	tree, err := digest.Parse(digestOf(t, e.dir))
	must(t, err)
	cache := image.NewLayerCache(filepath.Join(os.Getenv(statcache.EnvDir), "layers"))
	spec := image.LayerSpec{Tree: tree, Path: "/srv/www", Compression: image.Gzip}
	cache.Put(image.Layer{Descriptor: image.Descriptor{MediaType: image.MediaTypeLayerGzip, Digest: digest.Bytes([]byte("lie")), Size: 3}, DiffID: digest.Bytes([]byte("lie")), Spec: spec})
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      imageConfig(e, reg.Host, ""),
				ExpectError: regexp.MustCompile(`(?s)Cannot push the image.*Nothing was recorded in state`),
			},
			{
				Config: imageConfig(e, reg.Host, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionCreate),
					capturePlanned("immutable_image.web", "digest", &planned),
				}},
				Check: func(*terraformState) error {
					if got := crane(t, "digest", reg.Host+"/web@"+planned); got != planned {
						return fmt.Errorf("registry serves %s, plan said %s", got, planned)
					}
					return nil
				},
			},
		},
	})
}

// lateString is a test variable whose value is known only when the step
// runs (a ref an earlier step made).
type lateString struct{ p *string }

func (v lateString) MarshalJSON() ([]byte, error) { return json.Marshal(*v.p) }

// TestAccImageImport: an image imports by its ref (an import block); the
// plan of the same configuration computes the same digest and imports
// with an in-place update that fills the inputs, never a replacement;
// a tag is refused as an import ID.
func TestAccImageImport(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	e.write(map[string]string{"index.html": "<h1>imported</h1>"})
	cfg := imageConfig(e, reg.Host, "")
	var ref string
	vars := config.Variables{"ref": lateString{&ref}}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: func(s *terraformState) error {
					ref = s.RootModule().Resources["immutable_image.web"].Primary.Attributes["ref"]
					return nil
				},
			},
			{
				ResourceName:  "immutable_image.web",
				ImportState:   true,
				ImportStateId: reg.Host + "/web:latest",
				ExpectError:   regexp.MustCompile(`Import an image by its reference`),
			},
			{
				// Forget it, keeping what was pushed.
				Config: e.providerBlock() + `
removed {
  from = immutable_image.web
  lifecycle {
    destroy = false
  }
}
`,
			},
			{
				ConfigVariables: vars,
				Config: cfg + `
variable "ref" {
  type = string
}
import {
  to = immutable_image.web
  id = var.ref
}
`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("ref"), knownvalue.StringFunc(func(v string) error {
						if v != ref {
							return fmt.Errorf("ref %s after import, want %s", v, ref)
						}
						return nil
					})),
				},
			},
		},
	})
}
