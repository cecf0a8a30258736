package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
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
				// Tags alone: an in-place update, the image untouched: its
				// manifest read by digest, no blob asked for, both tags put.
				PreConfig: proxy.Reset,
				Config:    imageConfig(e, host, `tags = ["latest", "stable"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionUpdate),
				}},
				Check: func(s *terraformState) error {
					want := s.RootModule().Resources["immutable_image.web"].Primary.Attributes["digest"]
					if got := crane(t, "digest", host+"/web:stable"); got != want {
						return fmt.Errorf("stable points at %s, want %s", got, want)
					}
					if blobs, puts := proxy.Calls("", "/blobs/"), proxy.Calls("PUT", "/manifests/"); len(blobs) != 0 || len(puts) != 2 {
						return fmt.Errorf("retagging made %d blob requests (want 0) and %d manifest PUTs (want 2): %v", len(blobs), len(puts), proxy.Calls("", ""))
					}
					return nil
				},
			},
			{
				// A collector took the image's record (no release names it):
				// refresh sees it gone, the plan updates in place, and apply
				// records it again, uploading nothing.
				PreConfig: func() {
					e.deleteKeys("images/")
					proxy.Reset()
				},
				Config: imageConfig(e, host, `tags = ["latest", "stable"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionUpdate),
				}},
				Check: func(s *terraformState) error {
					sum, err := digest.Parse(s.RootModule().Resources["immutable_image.web"].Primary.Attributes["digest"])
					if err != nil {
						return err
					}
					if _, err := image.GetRecord(context.Background(), e.backend(), sum); err != nil {
						return fmt.Errorf("the record was not written again: %w", err)
					}
					if ups := proxy.Calls("POST", "/blobs/uploads/"); len(ups) != 0 {
						return fmt.Errorf("%d uploads to record an image the registry has", len(ups))
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

// manyLayersConfig is an image of n layers, layer i the artifact of the
// tree dir/l<i>, pushed to repository.
func manyLayersConfig(e *env, repository string, n int) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "l" {
  count  = %d
  source = "%s/l${count.index}"
}
resource "immutable_image" "big" {
  repository = %q
  layers = [for i in range(%d) : {
    digest = immutable_artifact.l[i].digest
    path   = "/data/l${i}"
  }]
}
`, n, e.dir, repository, n)
}

// writeRandom writes size bytes of reproducible incompressible content
// (from seed) to path.
func writeRandom(t *testing.T, path string, seed uint64, size int) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b) // never fails
	must(t, os.WriteFile(path, b, 0o644))
}

// TestAccImage_onePushedLayerOfTwenty: a 20-layer image (20 trees of
// 4 MiB of incompressible files) pushed through tofu to a real registry;
// then one file of one layer changes, and the second push — counted at a
// proxy in front of the registry — asks for each of the 21 blobs (HEAD),
// uploads exactly the changed layer and the config (one POST, PATCH and
// PUT each) and PUTs one manifest; nothing else is asked, and the plan
// asked nothing. `make bench` (scripts/bench-image.sh) does the same at
// 500 MiB, timed against crane.
func TestAccImage_onePushedLayerOfTwenty(t *testing.T) {
	const layers, files, fileSize, changed = 20, 4, 1 << 20, 7
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	repo := proxy.Host() + "/big"
	for l := range layers {
		for f := range files {
			writeRandom(t, filepath.Join(e.dir, fmt.Sprintf("l%d/f%d.bin", l, f)), uint64(l*files+f), fileSize)
		}
	}
	var first, second string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: manyLayersConfig(e, repo, layers),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					capturePlanned("immutable_image.big", "digest", &first),
				}},
				Check: func(*terraformState) error {
					// All 21 blobs uploaded the first time.
					if n := len(proxy.Calls("PUT", "/blobs/uploads/")); n != layers+1 {
						return fmt.Errorf("first push: %d blob uploads committed, want %d", n, layers+1)
					}
					return nil
				},
			},
			{
				PreConfig: func() {
					writeRandom(t, filepath.Join(e.dir, fmt.Sprintf("l%d/f2.bin", changed)), 1000, fileSize)
					proxy.Reset()
				},
				Config: manyLayersConfig(e, repo, layers),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.big", plancheck.ResourceActionReplace),
					noCalls(proxy),
					capturePlanned("immutable_image.big", "digest", &second),
				}},
				Check: func(s *terraformState) error {
					attrs := s.RootModule().Resources["immutable_image.big"].Primary.Attributes
					blobs := map[string]string{attrs["config_digest"]: "the config"}
					for i := range layers {
						blobs[attrs[fmt.Sprintf("layer_descriptors.%d.digest", i)]] = fmt.Sprintf("layer %d", i)
					}
					if len(blobs) != layers+1 {
						return fmt.Errorf("%d distinct blobs in state, want %d", len(blobs), layers+1)
					}
					want := map[string]int{
						"HEAD blob":     layers + 1, // every blob asked for first
						"POST upload":   2,          // the changed layer and the config
						"PATCH upload":  2,
						"PUT upload":    2,
						"PUT manifest":  1,
						"GET /v2/ ping": -1, // any number (go-containerregistry's ping before its first request)
					}
					got := map[string]int{}
					headed := map[string]bool{}
					missing := 0 // HEADs answered 404
					var committed []string
					for _, c := range proxy.Calls("", "") {
						kind := "other"
						switch {
						case c.Method == "HEAD" && strings.Contains(c.Path, "/blobs/sha256:"):
							kind = "HEAD blob"
							headed[c.Path[strings.LastIndex(c.Path, "/")+1:]] = true
							if c.Status == http.StatusNotFound {
								missing++
							}
						case c.Method == "POST" && strings.HasSuffix(c.Path, "/blobs/uploads/"):
							kind = "POST upload"
						case c.Method == "PATCH" && strings.Contains(c.Path, "/blobs/uploads/"):
							kind = "PATCH upload"
						case c.Method == "PUT" && strings.Contains(c.Path, "/blobs/uploads/"):
							kind = "PUT upload"
							committed = append(committed, c.Query)
						case c.Method == "PUT" && c.Path == "/v2/big/manifests/"+second:
							kind = "PUT manifest"
						case c.Method == "GET" && c.Path == "/v2/":
							kind = "GET /v2/ ping"
						}
						got[kind]++
					}
					var errs []string
					for kind, n := range want {
						if n >= 0 && got[kind] != n {
							errs = append(errs, fmt.Sprintf("%d %s, want %d", got[kind], kind, n))
						}
					}
					if missing != 2 {
						errs = append(errs, fmt.Sprintf("%d blob HEADs answered 404, want 2 (the changed layer, the config)", missing))
					}
					if got["other"] > 0 {
						errs = append(errs, fmt.Sprintf("%d other requests, want none", got["other"]))
					}
					for d, what := range blobs {
						if !headed[d] {
							errs = append(errs, "no HEAD of "+what+" "+d)
						}
					}
					// The uploads committed are the changed layer's and the config's.
					changedLayer := attrs[fmt.Sprintf("layer_descriptors.%d.digest", changed)]
					all := strings.Join(committed, " ")
					if !strings.Contains(all, strings.TrimPrefix(changedLayer, "sha256:")) || !strings.Contains(all, strings.TrimPrefix(attrs["config_digest"], "sha256:")) {
						errs = append(errs, fmt.Sprintf("uploads committed %v, want layer %d (%s) and the config (%s)", committed, changed, changedLayer, attrs["config_digest"]))
					}
					if second == first {
						errs = append(errs, "the digest did not change with a file of layer "+fmt.Sprint(changed))
					}
					if len(errs) > 0 {
						return fmt.Errorf("second push: %s\nrequests: %v", strings.Join(errs, "; "), proxy.Calls("", ""))
					}
					crane(t, "validate", "--remote", repo+"@"+second)
					return nil
				},
			},
		},
	})
}

// TestAccImageUnknownValues: a config value known only at apply (an env
// value, an entrypoint argument) leaves the image's digest unknown at
// plan instead of failing the plan; tags known only at apply do not
// touch the digest: it is known at plan, and an unchanged image whose
// tags are unknown updates in place, never replaces.
func TestAccImageUnknownValues(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	e.write(map[string]string{"index.html": "<h1>late</h1>"})
	config := func(version string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "terraform_data" "late" {
  input = %q
}
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "env" {
  repository = "%[3]s/env"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
  config = {
    entrypoint = ["/bin/server", terraform_data.late.output]
    env        = { VERSION = terraform_data.late.output }
  }
}
resource "immutable_image" "tagged" {
  repository = "%[3]s/tagged"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
  tags       = [terraform_data.late.output]
}
`, version, e.dir, reg.Host)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config("v1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue("immutable_image.env", tfjsonpath.New("digest")),
					plancheck.ExpectKnownValue("immutable_image.tagged", tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
				}},
				Check: func(s *terraformState) error {
					ref := s.RootModule().Resources["immutable_image.env"].Primary.Attributes["ref"]
					if cfg := crane(t, "config", ref); !strings.Contains(cfg, `"VERSION=v1"`) {
						return fmt.Errorf("config %s lacks VERSION=v1", cfg)
					}
					return nil
				},
			},
			{
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.env", plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction("immutable_image.tagged", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.tagged", tfjsonpath.New("tags"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("v2")})),
				},
			},
		},
	})
}

// TestImageInvalidPort: an exposed port the image config cannot take
// ("08080" is not how a config spells 8080) is an error on exposed_ports
// at plan, before any layer is encoded.
func TestImageInvalidPort(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"index.html": "x"})
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "127.0.0.1:1/web"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
  config     = { exposed_ports = ["08080"] }
}
`, e.dir),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Invalid port.*08080`),
		}},
	})
}

// TestAccImageOfInlineContent: an artifact's inline content created in
// the same run is a layer whose digest is known at plan (it was refused
// as "not stored" though the user did what the message said).
func TestAccImageOfInlineContent(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "motd" {
  content = "hello from the image\n"
}
resource "immutable_image" "web" {
  repository = "%s/motd"
  layers     = [{ digest = immutable_artifact.motd.digest, path = "/etc/motd" }]
}
`, reg.Host),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				capturePlanned("immutable_image.web", "digest", &planned),
			}},
			Check: func(*terraformState) error {
				if got := crane(t, "digest", reg.Host+"/motd@"+planned); got != planned {
					return fmt.Errorf("registry serves %s, plan said %s", got, planned)
				}
				return nil
			},
		}},
	})
}
