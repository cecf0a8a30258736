package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// pushRandomImage pushes a random one-layer image to repository (on a
// test registry) by digest, and returns its digest.
func pushRandomImage(t *testing.T, repository string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	must(t, err)
	d, err := img.Digest()
	must(t, err)
	ref, err := name.NewDigest(repository + "@" + d.String())
	must(t, err)
	must(t, remote.Write(ref, img))
	return d.String()
}

// publishImages publishes web at each version with the image web =
// repository@digest.
func publishImages(t *testing.T, b store.Backend, repository string, versions map[string]string) {
	t.Helper()
	for v, d := range versions {
		_, err := release.WriteRecord(context.Background(), b, &release.Record{Name: "web", Version: v,
			Artifacts: map[string]string{"site": digestOfBytes(v)}, Images: map[string]string{"web": repository + "@" + d}}, time.Now())
		must(t, err)
	}
}

// mirrorConfig: the channel prod of web at version, with image_tags.
func mirrorConfig(e *env, version, imageTags string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_channel" "prod" {
  release    = "web"
  channel    = "prod"
  version    = %q
  image_tags = %s
}
`, version, imageTags)
}

// expectTargetChange checks that the plan changes prod's
// image_tag_targets[key] from from ("" for absent) to to.
func expectTargetChange(key, from, to string) plancheck.PlanCheck {
	const addr = "immutable_channel.prod"
	return planCheck(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		for _, rc := range req.Plan.ResourceChanges {
			if rc.Address != addr {
				continue
			}
			side := func(v any) string {
				m, _ := v.(map[string]any)
				targets, _ := m["image_tag_targets"].(map[string]any)
				s, _ := targets[key].(string)
				return s
			}
			if b, a := side(rc.Change.Before), side(rc.Change.After); b != from || a != to {
				resp.Error = fmt.Errorf("%s image_tag_targets[%q]: plan %q -> %q, want %q -> %q", addr, key, b, a, from, to)
			}
			return
		}
		resp.Error = fmt.Errorf("%s is not in the plan", addr)
	})
}

// TestAccChannel_imageTags: a channel mirrors its version's image to a
// registry tag. The tag follows each move (the plan shows from -> to in
// image_tag_targets), a rollback moves it back with one manifest PUT and
// no blob upload, an unchanged channel plans without a registry request,
// and an image name the version lacks, or a bad tag, is refused at plan.
func TestAccChannel_imageTags(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	repo := proxy.Host() + "/web"
	d1, d2 := pushRandomImage(t, reg.Host+"/web"), pushRandomImage(t, reg.Host+"/web")
	publishImages(t, e.backend().Backend(), repo, map[string]string{"1.0.0": d1, "1.0.1": d2})
	key := repo + ":prod"
	tagIs := func(want string) func(*terraformState) error {
		return func(*terraformState) error {
			if got := crane(t, "digest", key); got != want {
				return fmt.Errorf("%s points at %s, want %s", key, got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      mirrorConfig(e, "1.0.0", `{ api = "prod" }`),
				ExpectError: regexp.MustCompile(`(?s)Image not in the version.*image_tags names the image "api".*its\s+images\s+are\s+web`),
			},
			{
				Config:      mirrorConfig(e, "1.0.0", `{ web = "-prod" }`),
				ExpectError: regexp.MustCompile(`(?s)Invalid tag.*"-prod" is not a tag`),
			},
			{
				Config: mirrorConfig(e, "1.0.0", `{ web = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionCreate),
					expectTargetChange(key, "", d1),
				}},
				Check: func(s *terraformState) error {
					err := tagIs(d1)(s)
					proxy.Reset()
					return err
				},
			},
			{
				// Unchanged: an empty plan, and not one request to the registry.
				Config: mirrorConfig(e, "1.0.0", `{ web = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					noCalls(proxy),
				}},
			},
			{
				Config: mirrorConfig(e, "1.0.1", `{ web = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionUpdate),
					expectTargetChange(key, d1, d2),
				}},
				Check: tagIs(d2),
			},
			{
				// Roll back: the tag moves back; a manifest PUT, no blob.
				PreConfig: proxy.Reset,
				Config:    mirrorConfig(e, "1.0.0", `{ web = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectTargetChange(key, d2, d1),
				}},
				Check: func(s *terraformState) error {
					if err := tagIs(d1)(s); err != nil {
						return err
					}
					if n := len(proxy.Calls("POST", "/blobs/uploads/")) + len(proxy.Calls("PUT", "/blobs/")); n != 0 {
						return fmt.Errorf("a rollback of the tag made %d blob upload requests, want none: %v", n, proxy.Calls("", ""))
					}
					if puts := proxy.Calls("PUT", "/manifests/"); len(puts) != 1 || !strings.HasSuffix(puts[0].Path, "/manifests/prod") {
						return fmt.Errorf("manifest PUTs %v, want one, of the tag", puts)
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("image_tag_targets"),
						knownvalue.MapExact(map[string]knownvalue.Check{key: knownvalue.StringExact(d1)})),
				},
			},
		},
	})
}

// TestAccChannel_imageTagRefused: a registry refusing the tag (ECR's
// immutable tags, 400 TAG_INVALID) fails the apply saying the channel
// moved and the digest is what to deploy; the move stands in the store,
// the state keeps the tag's old target, and once the registry takes it
// the next apply points the tag. A new channel whose tag fails is
// tainted by Terraform; the plan that would create it again says to
// untaint it.
func TestAccChannel_imageTagRefused(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	refuse := func(c testserver.Call, _ int) testserver.Fault {
		if c.Method == "PUT" && strings.HasSuffix(c.Path, "/manifests/prod") {
			return testserver.TagImmutable
		}
		return testserver.Pass
	}
	proxy := reg.Faulty(t, nil)
	repo := proxy.Host() + "/web"
	d1, d2 := pushRandomImage(t, reg.Host+"/web"), pushRandomImage(t, reg.Host+"/web")
	b := e.backend().Backend()
	publishImages(t, b, repo, map[string]string{"1.0.0": d1, "1.0.1": d2})
	key := repo + ":prod"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: mirrorConfig(e, "1.0.0", `{ web = "prod" }`),
				Check: func(*terraformState) error {
					proxy.SetFaults(refuse)
					return nil
				},
			},
			{
				Config: mirrorConfig(e, "1.0.1", `{ web = "prod" }`),
				ExpectError: regexp.MustCompile(`(?s)Channel moved; registry tags not mirrored.*points\s+to\s+1.0.1\s+\(move\s+2\).*` +
					regexp.QuoteMeta(key) + `\s+->\s+` + d2 + `.*immutable.*Tags\s+are\s+pointers.*deploy,\s+is\s+the\s+digest\s+\(` +
					regexp.QuoteMeta(repo+"@"+d2) + `\).*next\s+apply\s+points\s+them\s+again`),
			},
			{
				PreConfig: func() {
					cur, err := release.Current(context.Background(), b, "web", "prod")
					must(t, err)
					if cur == nil || cur.To != "1.0.1" {
						t.Fatalf("prod is at %+v, want the move to 1.0.1 written", cur)
					}
					if got := crane(t, "digest", key); got != d1 {
						t.Fatalf("%s points at %s, want %s still", key, got, d1)
					}
					proxy.SetFaults(nil)
				},
				// The move stands; the tag is retried.
				Config: mirrorConfig(e, "1.0.1", `{ web = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_channel.prod", plancheck.ResourceActionUpdate),
					expectTargetChange(key, d1, d2),
				}},
				Check: func(*terraformState) error {
					if got := crane(t, "digest", key); got != d2 {
						return fmt.Errorf("%s points at %s, want %s", key, got, d2)
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_channel.prod", tfjsonpath.New("move"), knownvalue.Int64Exact(2)),
				},
			},
		},
	})

	// A new channel whose tag is refused.
	proxy.SetFaults(refuse)
	cfg := e.providerBlock() + `
resource "immutable_channel" "staging" {
  release    = "web"
  channel    = "staging"
  version    = "1.0.0"
  image_tags = { web = "prod" }
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Channel moved; registry tags not mirrored.*terraform\s+untaint`),
			},
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Channel exists.*terraform\s+untaint`),
			},
		},
	})
}

// TestChannelWarnsOfTagsMovedByHand: a plan that points mirrored tags
// warns of one the registry has elsewhere than the state says (moved by
// hand) and of one it has at another image before this channel ever
// pointed it; a tag where the state says, or missing, is no news.
func TestChannelWarnsOfTagsMovedByHand(t *testing.T) {
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	repo := reg.Host + "/web"
	d1, d2 := pushRandomImage(t, repo), pushRandomImage(t, repo)
	crane(t, "tag", repo+"@"+d2, "prod")
	crane(t, "tag", repo+"@"+d1, "stable")
	crane(t, "tag", repo+"@"+d2, "taken")
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	r := &ChannelResource{data: newProviderData(store.New(b), nil)}
	target := func(tag, d string) tagTarget { return tagTarget{repository: repo, tag: tag, digest: d} }
	had := map[string]tagTarget{}
	for _, t := range []tagTarget{target("prod", d1), target("stable", d1), target("gone", d1)} {
		had[t.key()] = t
	}
	diags := r.warnTagsElsewhere(context.Background(),
		[]tagTarget{target("prod", d1), target("stable", d2), target("gone", d2), target("taken", d1), target("new", d1)}, had)
	if diags.HasError() || len(diags) != 2 {
		t.Fatalf("got %v, want two warnings", diags)
	}
	byHand, taken := diags[0].Detail(), diags[1].Detail()
	for _, want := range []string{
		repo + ":prod: " + d2 + ", not " + d1 + " as this channel left it; apply points it at " + d1,
		repo + ":gone: nothing (it does not exist), not " + d1,
	} {
		if !strings.Contains(byHand, want) {
			t.Errorf("warning %q lacks %q", byHand, want)
		}
	}
	if strings.Contains(byHand, ":stable") || strings.Contains(byHand, ":new") {
		t.Errorf("warning %q names a tag where the state says, or a new one", byHand)
	}
	if want := repo + ":taken: " + d2 + " -> " + d1; !strings.Contains(taken, want) || strings.Contains(taken, ":new") {
		t.Errorf("warning %q: want only %q", taken, want)
	}
}

func TestParseTagKey(t *testing.T) {
	for _, c := range []struct{ key, repo, tag string }{
		{"127.0.0.1:5000/web:prod", "127.0.0.1:5000/web", "prod"},
		{"ghcr.io/acme/api:v1.2", "ghcr.io/acme/api", "v1.2"},
		{"127.0.0.1:5000/web", "", ""},
	} {
		repo, tag, ok := parseTagKey(c.key)
		if repo != c.repo || tag != c.tag || ok != (c.tag != "") {
			t.Errorf("parseTagKey(%q) = %q, %q, %v; want %q, %q", c.key, repo, tag, ok, c.repo, c.tag)
		}
	}
}

// TestAccChannel_imageTagsReadThroughTrust: the record a channel's
// image_tags mirror is read through the trust policy too. With the
// channel unchanged, its plan reads the version's record to work out the
// tags' targets; that read skipped the policy, so a record a bucket
// writer put there (unsigned here) chose what the registry's tags point
// at. Under a policy the plan now refuses it.
func TestAccChannel_imageTagsReadThroughTrust(t *testing.T) {
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	repo := reg.Host + "/web"
	publishImages(t, e.backend().Backend(), repo, map[string]string{"1.0.0": pushRandomImage(t, repo)})
	_, ci := writeSigningKey(t, t.TempDir())
	ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
	cfg := mirrorConfig(e, "1.0.0", `{ web = "prod" }`)
	trusted := strings.Replace(cfg, "provider \"immutable\" {\n", "provider \"immutable\" {\n  "+trustBlockConfig(true, ciPub)+"\n", 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				Config:      trusted,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Untrusted record.*releases/web/versions/1\.0\.0`),
			},
		},
	})
}
