package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	fwtypes "github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// pushBase pushes a two-layer image for each platform ("os/arch" or
// "os/arch/variant", the variant in the config and the index) to ref (an
// index of them when there are several) and returns the digest of each
// platform's manifest, by platform as given.
func pushBase(t *testing.T, ref string, platforms ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		parts := append(strings.Split(p, "/"), "")
		os, arch, variant := parts[0], parts[1], parts[2]
		img, err := random.Image(512, 2)
		must(t, err)
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		cfg, err := img.ConfigFile()
		must(t, err)
		cfg.OS, cfg.Architecture, cfg.Variant = os, arch, variant
		cfg.Config.Env = []string{"PATH=/usr/bin", "BASE=1"}
		img, err = mutate.ConfigFile(img, cfg)
		must(t, err)
		d, err := img.Digest()
		must(t, err)
		out[p] = d.String()
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch, Variant: variant}}})
	}
	r, err := name.ParseReference(ref)
	must(t, err)
	if len(adds) == 1 {
		img, ok := adds[0].Add.(v1.Image)
		if !ok {
			t.Fatal("not an image")
		}
		must(t, remote.Write(r, img))
		return out
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	must(t, remote.WriteIndex(r, idx))
	return out
}

// TestAccImageOnBase: data.immutable_image resolves a tag (an index) to
// the digest of one platform's manifest at plan; an image on that base
// keeps its layers and env, adds its own, and mounts the base's blobs
// from the base's repository instead of uploading them; a base bump is a
// new digest and a replacement.
func TestAccImageOnBase(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	bases := pushBase(t, reg.Host+"/base:1", "linux/amd64", "linux/arm64")
	proxy := reg.Count(t)
	host := proxy.Host()
	e.write(map[string]string{"index.html": "<h1>on a base</h1>"})
	config := func(platform string) string {
		return e.providerBlock() + fmt.Sprintf(`
data "immutable_image" "base" {
  name     = "%s/base:1"
  platform = %q
}
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  base       = data.immutable_image.base.ref
  layers = [{
    digest = immutable_artifact.site.digest
    path   = "/srv/www"
  }]
  config = {
    env = { PORT = "8080" }
  }
}
`, host, platform, e.dir, host)
	}
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config("linux/arm64"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
					plancheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("platform"), knownvalue.StringExact("linux/arm64")),
					capturePlanned("immutable_image.web", "digest", &planned),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.immutable_image.base", tfjsonpath.New("digest"), knownvalue.StringExact(bases["linux/arm64"])),
					statecheck.ExpectKnownValue("data.immutable_image.base", tfjsonpath.New("platforms"), knownvalue.MapSizeExact(2)),
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("layer_descriptors"), knownvalue.ListSizeExact(3)),
				},
				Check: func(*terraformState) error {
					ref := host + "/web@" + planned
					if got := crane(t, "digest", ref); got != planned {
						return fmt.Errorf("registry serves %s, plan said %s", got, planned)
					}
					crane(t, "validate", "--remote", ref)
					cfg := crane(t, "config", ref)
					for _, want := range []string{`"BASE=1"`, `"PORT=8080"`, `"architecture":"arm64"`} {
						if !strings.Contains(cfg, want) {
							return fmt.Errorf("config %s lacks %s", cfg, want)
						}
					}
					// Both base layers mounted from base, not uploaded.
					mounts := 0
					for _, c := range proxy.Calls("POST", "/web/blobs/uploads/") {
						if strings.Contains(c.Path, "mount=") || strings.Contains(c.Query, "mount=") {
							mounts++
						}
					}
					if mounts != 2 {
						return fmt.Errorf("%d base layers mounted, want 2: %v", mounts, proxy.Calls("", ""))
					}
					return nil
				},
			},
			{
				// Another platform of the same tag: another base digest, a replacement.
				Config: config("linux/amd64"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionReplace),
				}},
			},
		},
	})
}

// TestAccImagePlatformAsWritten: arm64's variant v8 may be left out (as
// containerd reads it), on either side: a platform written without it on
// a base whose config has it, or with it on a base whose config has none,
// plans with the platform as written (core refuses a planned value that
// differs from the configuration's) and applies; data.immutable_image
// finds linux/arm64 in an index that lists linux/arm64/v8.
func TestAccImagePlatformAsWritten(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	withV8 := pushBase(t, reg.Host+"/base:v8", "linux/arm64/v8", "linux/amd64")["linux/arm64/v8"]
	without := pushBase(t, reg.Host+"/base:plain", "linux/arm64")["linux/arm64"]
	e.write(map[string]string{"index.html": "<h1>arm</h1>"})
	config := func(base, platform string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  base       = "%s/base@%s"
  platform   = %q
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
}
`, e.dir, reg.Host, reg.Host, base, platform)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config(withV8, "linux/arm64") + fmt.Sprintf(`
data "immutable_image" "arm64" {
  name     = "%s/base:v8"
  platform = "linux/arm64"
}
`, reg.Host),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.immutable_image.arm64", tfjsonpath.New("digest"), knownvalue.StringExact(withV8)),
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("platform"), knownvalue.StringExact("linux/arm64")),
				},
			},
			{
				Config: config(without, "linux/arm64/v8"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("platform"), knownvalue.StringExact("linux/arm64/v8")),
				},
			},
		},
	})
}

// TestAccImageIndex: an index of two platform images is known at plan,
// pushed by digest, tagged, and served as an index naming both.
func TestAccImageIndex(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	e.write(map[string]string{"index.html": "<h1>everywhere</h1>"})
	config := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "amd64" {
  repository = "%[2]s/web"
  platform   = "linux/amd64"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
}
resource "immutable_image" "arm64" {
  repository = "%[2]s/web"
  platform   = "linux/arm64"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
}
resource "immutable_image_index" "web" {
  repository = "%[2]s/web"
  images     = [immutable_image.arm64.ref, immutable_image.amd64.ref]
  tags       = ["multi"]
}
`, e.dir, reg.Host)
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				// A bad tag is refused at plan, before anything is pushed.
				Config:      strings.Replace(config, `tags       = ["multi"]`, `tags       = ["-multi"]`, 1),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid tag`),
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					capturePlanned("immutable_image_index.web", "digest", &planned),
					plancheck.ExpectKnownValue("immutable_image_index.web", tfjsonpath.New("manifests"), knownvalue.MapSizeExact(2)),
				}},
				Check: func(*terraformState) error {
					if got := crane(t, "digest", reg.Host+"/web:multi"); got != planned {
						return fmt.Errorf("web:multi is %s, plan said %s", got, planned)
					}
					m := crane(t, "manifest", reg.Host+"/web@"+planned)
					if !strings.Contains(m, "application/vnd.oci.image.index.v1+json") || !strings.Contains(m, `"architecture":"arm64"`) || !strings.Contains(m, `"architecture":"amd64"`) {
						return fmt.Errorf("index manifest %s", m)
					}
					crane(t, "validate", "--remote", reg.Host+"/web@"+planned)
					return nil
				},
			},
			{Config: config, PlanOnly: true},
		},
	})
}

// TestImagePlanWarnsOfMovedTags: a tag this plan starts pointing at the
// image, which points at another image now, is named with from -> to;
// a tag the state already points here costs no request.
func TestImagePlanWarnsOfMovedTags(t *testing.T) {
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	old := pushBase(t, proxy.Host()+"/web:prod", "linux/amd64")["linux/amd64"]
	data := newProviderData(nil, nil)
	r := &ImageResource{data: data}
	next := "sha256:" + strings.Repeat("a", 64)
	in := imageInputs{repository: proxy.Host() + "/web", tags: []string{"fresh", "prod"}}
	plan := &imageModel{Digest: fwtypes.StringValue(next), Repository: fwtypes.StringValue(in.repository)}
	proxy.Reset()
	d := r.warnMovedTags(context.Background(), in, plan, nil)
	if d.HasError() || d.WarningsCount() != 1 {
		t.Fatalf("diagnostics %v; want one warning", d)
	}
	want := proxy.Host() + "/web:prod: " + old + " -> " + next
	if detail := d.Warnings()[0].Detail(); !strings.Contains(detail, want) || strings.Contains(detail, ":fresh") {
		t.Fatalf("warning %q; want %q and nothing of the new tag", detail, want)
	}
	if n := len(proxy.Calls("", "/manifests/")); n != 2 {
		t.Fatalf("%d manifest requests, want one per tag", n)
	}
	// The state points prod here already: no request, no warning.
	prior := &imageModel{Digest: plan.Digest, Repository: plan.Repository,
		Tags: fwtypes.SetValueMust(fwtypes.StringType, []attr.Value{fwtypes.StringValue("prod"), fwtypes.StringValue("fresh")})}
	proxy.Reset()
	if d := r.warnMovedTags(context.Background(), in, plan, prior); d.WarningsCount() != 0 || len(proxy.Calls("", "")) != 0 {
		t.Fatalf("unchanged tags: %v, %d requests", d, len(proxy.Calls("", "")))
	}
}

// TestAccImageOnDockerBaseReplans: a base with a Docker schema 2 manifest (as
// many images on Docker Hub still are) gives a Docker manifest whose own
// layers have Docker's gzip media type: the store records it, the
// registry serves it, and a later change plans again from the state's
// layer descriptors.
func TestAccImageOnDockerBaseReplans(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	img, err := random.Image(512, 2) // Docker schema 2 media types
	must(t, err)
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	if mt, err := img.MediaType(); err != nil || mt != types.DockerManifestSchema2 {
		t.Fatalf("base media type %s, %v", mt, err)
	}
	r, err := name.ParseReference(reg.Host + "/base:docker")
	must(t, err)
	must(t, remote.Write(r, img))
	d, err := img.Digest()
	must(t, err)
	e.write(map[string]string{"index.html": "<h1>docker base</h1>"})
	config := func(port string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  base       = "%s/base@%s"
  layers     = [{ digest = immutable_artifact.site.digest, path = "/srv/www" }]
  config     = { env = { PORT = %q } }
}
`, e.dir, reg.Host, reg.Host, d, port)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config("8080"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_image.web", tfjsonpath.New("media_type"), knownvalue.StringExact(string(types.DockerManifestSchema2))),
				},
				Check: func(s *terraformState) error {
					ref := s.RootModule().Resources["immutable_image.web"].Primary.Attributes["ref"]
					crane(t, "validate", "--remote", ref)
					return nil
				},
			},
			{
				Config: config("9090"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionReplace),
				}},
			},
		},
	})
}
