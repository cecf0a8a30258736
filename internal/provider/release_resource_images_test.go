package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// putImageRecord stores, as immutable_image does, the record of an image
// of repository repo from scratch whose own layers land at the paths
// given, each made of a one-file tree "<path> <tag>"; it returns the
// image's reference and each layer's digest.
func putImageRecord(t *testing.T, st *store.Store, repo string, layers [][2]string) (string, []string) {
	t.Helper()
	var ls []image.Layer
	var descs []map[string]any
	var diffIDs, digests []string
	for _, pt := range layers {
		body := pt[0] + " " + pt[1]
		sum := digest.Bytes([]byte(body))
		_, err := st.PutBlob(context.Background(), sum, strings.NewReader(body))
		must(t, err)
		l := image.Layer{Descriptor: image.Descriptor{MediaType: image.MediaTypeLayerGzip, Digest: digest.Bytes([]byte("gz " + body)), Size: 10},
			DiffID: digest.Bytes([]byte("tar " + body)), Spec: image.LayerSpec{Tree: sum, Path: pt[0], Compression: image.Gzip}}
		ls = append(ls, l)
		descs = append(descs, map[string]any{"mediaType": l.MediaType, "digest": l.Digest.String(), "size": l.Size})
		diffIDs, digests = append(diffIDs, l.DiffID.String()), append(digests, l.Digest.String())
	}
	config, err := json.Marshal(map[string]any{"os": "linux", "architecture": "amd64", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	must(t, err)
	manifest, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": image.MediaTypeManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.Bytes(config).String(), "size": len(config)},
		"layers": descs})
	must(t, err)
	img := &image.Image{MediaType: image.MediaTypeManifest, Digest: digest.Bytes(manifest), ConfigDigest: digest.Bytes(config),
		Platform: image.Platform{OS: "linux", Architecture: "amd64"}}
	must(t, image.PutRecord(context.Background(), st, image.NewRecord(img, nil, ls), manifest, config))
	return "registry.example/" + repo + "@" + img.Digest.String(), digests
}

// imagesConfig: a release of the site artifact with images, at version.
func (e *env) imagesConfig(version, images string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}

resource "immutable_release" "web" {
  name      = "web"
  version   = %q
  artifacts = { site = immutable_artifact.site.digest }
  images    = %s
}
`, e.dir, version, images)
}

// deployConfig: a service deployed by the api image of the release
// version pinned, and the diff of 1.0.0 and 1.0.1.
func (e *env) deployConfig(pin string) string {
	return e.providerBlock() + fmt.Sprintf(`
data "immutable_release" "web" {
  name    = "web"
  version = %q
}

resource "terraform_data" "svc" {
  input = data.immutable_release.web.images["api"]
}

data "immutable_release_diff" "web" {
  name = "web"
  from = "1.0.0"
  to   = "1.0.1"
}
`, pin)
}

// TestAccRelease_images: releases carry images. 1.0.0 and 1.0.1 name other
// api images (both built on this store: their records are there) and
// other proxy images (built elsewhere: no records). A service deployed
// from the release pinned at 1.0.1 gets its api reference; pinning 1.0.0
// is one in-place update of the reference. The diff names the changed
// images, the layers of the recorded one, and says the other's are
// unknown.
func TestAccRelease_images(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		st := e.backend()
		apiV1, layersV1 := putImageRecord(t, st, "api", [][2]string{{"/app", "v1"}, {"/etc/app", "same"}})
		apiV2, layersV2 := putImageRecord(t, st, "api", [][2]string{{"/app", "v2"}, {"/etc/app", "same"}})
		if layersV1[1] != layersV2[1] || layersV1[0] == layersV2[0] {
			t.Fatalf("the images share their second layer only: %v, %v", layersV1, layersV2)
		}
		proxyV1 := "registry.example/proxy@" + digest.Bytes([]byte("proxy v1")).String()
		proxyV2 := "registry.example/proxy@" + digest.Bytes([]byte("proxy v2")).String()
		images := func(api, proxy string) string { return fmt.Sprintf("{ api = %q, proxy = %q }", api, proxy) }
		str := func(addr string, p tfjsonpath.Path, want string) statecheck.StateCheck {
			return statecheck.ExpectKnownValue(addr, p, knownvalue.StringExact(want))
		}
		const diff = "data.immutable_release_diff.web"
		changed := tfjsonpath.New("images_changed")
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.imagesConfig("1.0.0", images(apiV1, proxyV1)),
					ConfigStateChecks: []statecheck.StateCheck{
						str(rel, tfjsonpath.New("images").AtMapKey("api"), apiV1),
					},
				},
				{
					Config: e.imagesConfig("1.0.1", images(apiV2, proxyV2)),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(rel, plancheck.ResourceActionUpdate),
					}},
				},
				{
					// A deploy workspace: the release at 1.0.1, by its images.
					Config: e.deployConfig("1.0.1"),
					ConfigStateChecks: []statecheck.StateCheck{
						str("data.immutable_release.web", tfjsonpath.New("images").AtMapKey("api"), apiV2),
						str("terraform_data.svc", tfjsonpath.New("output"), apiV2),
						str(diff, changed.AtMapKey("api").AtMapKey("from"), apiV1),
						str(diff, changed.AtMapKey("api").AtMapKey("to"), apiV2),
						statecheck.ExpectKnownValue(diff, changed.AtMapKey("api").AtMapKey("layer_changes"), knownvalue.ListExact([]knownvalue.Check{
							knownvalue.StringExact("- " + layersV1[0] + " /app"), knownvalue.StringExact("+ " + layersV2[0] + " /app"),
						})),
						statecheck.ExpectKnownValue(diff, changed.AtMapKey("api").AtMapKey("layers_added"), knownvalue.Int64Exact(1)),
						statecheck.ExpectKnownValue(diff, changed.AtMapKey("api").AtMapKey("layers_unknown"), knownvalue.Null()),
						str(diff, changed.AtMapKey("proxy").AtMapKey("to"), proxyV2),
						statecheck.ExpectKnownValue(diff, changed.AtMapKey("proxy").AtMapKey("layer_changes"), knownvalue.Null()),
						statecheck.ExpectKnownValue(diff, changed.AtMapKey("proxy").AtMapKey("layers_unknown"),
							knownvalue.StringRegexp(regexp.MustCompile(`no record of `+regexp.QuoteMeta(proxyV1)))),
						statecheck.ExpectKnownValue(diff, tfjsonpath.New("images_added"), knownvalue.MapSizeExact(0)),
					},
				},
				{
					// Rolling back is pinning: one in-place change of the reference.
					Config: e.deployConfig("1.0.0"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("terraform_data.svc", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("terraform_data.svc", tfjsonpath.New("input"), knownvalue.StringExact(apiV1)),
					}},
					ConfigStateChecks: []statecheck.StateCheck{str("terraform_data.svc", tfjsonpath.New("output"), apiV1)},
				},
			},
		})
	})
}

// TestAccRelease_imageTagRefused: a tag as an image is refused at plan,
// naming the attribute and what to use instead; nothing is written to the
// store.
func TestAccRelease_imageTagRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.imagesConfig("1.0.0", `{ api = "registry.example/api:1.0" }`),
			ExpectError: regexp.MustCompile(`(?s)Error: Invalid image reference.*images\s+= \{ api = "registry.example/api:1.0" \}.*` +
				`registry.example/api:1.0 is a tag, not an image digest reference.*immutable_image's\s+` + "`ref`" +
				`.*data.immutable_image's\s+` + "`ref`"),
		}},
	})
	if keys, err := e.backend().Backend().List(context.Background(), ""); err != nil || len(keys) != 0 {
		t.Fatalf("a refused plan wrote %v (%v)", keys, err)
	}
}
