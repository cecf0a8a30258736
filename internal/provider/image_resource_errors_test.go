package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// says matches the words of each phrase in order, whatever space or line
// break tofu puts between them, with anything between the phrases.
func says(phrases ...string) *regexp.Regexp {
	parts := make([]string, len(phrases))
	for i, p := range phrases {
		words := strings.Fields(p)
		for j, w := range words {
			words[j] = regexp.QuoteMeta(w)
		}
		parts[i] = strings.Join(words, `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}

// imageWith is the env's source dir as an artifact and an image whose
// attributes are body, with providerExtra in the provider block.
func (e *env) imageWith(providerExtra, body string) string {
	return e.providerBlock(providerExtra) + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_image" "web" {
  %s
}
`, e.dir, body)
}

// siteLayer is an image of the artifact at /srv/www, pushed to repository.
func siteLayer(repository string) string {
	return fmt.Sprintf(`repository = %q
  layers = [{
    digest = immutable_artifact.site.digest
    path   = "/srv/www"
  }]`, repository)
}

// storeEmpty fails when anything was written to the env's store.
func (e *env) storeEmpty() {
	e.t.Helper()
	if keys, _ := e.backend().Backend().List(context.Background(), ""); len(keys) != 0 {
		e.t.Fatalf("a refused configuration wrote to the store: %v", keys)
	}
}

// noWrites fails when a request that writes reached the registry behind
// proxy since its last Reset.
func noWrites(t *testing.T, proxy *testserver.Counter) {
	t.Helper()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if calls := proxy.Calls(m, ""); len(calls) > 0 {
			t.Fatalf("a refused configuration wrote to the registry: %v", calls)
		}
	}
}

// expectCreate is a plan check: the image is still to be created (a
// failed apply left nothing in state).
func expectCreate() plancheck.PlanCheck {
	return plancheck.ExpectResourceAction("immutable_image.web", plancheck.ResourceActionCreate)
}

// manifestAbsent fails when repository has any manifest the registry
// serves under digest.
func manifestAbsent(t *testing.T, ref string) error {
	t.Helper()
	out, err := exec.Command(testserver.CranePath(t), "manifest", ref).CombinedOutput()
	if err == nil {
		return fmt.Errorf("the registry serves %s after a failed apply: %s", ref, out)
	}
	return nil
}

const missingDigest = "sha256:00000000000000000000000000000000000000000000000000000000000000aa"

// TestAccImageRefusedAtPlan: each bad input is refused at plan with a
// diagnostic naming the attribute and saying what to do; nothing reaches
// the store or the registry.
func TestAccImageRefusedAtPlan(t *testing.T) {
	requireAcc(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	host := proxy.Host()
	layer := func(digest, path string) string {
		return fmt.Sprintf(`repository = "%s/web"
  layers = [{
    digest = %s
    path   = %q
  }]`, host, digest, path)
	}
	site := "immutable_artifact.site.digest"
	for name, c := range map[string]struct {
		body string
		file bool // the artifact is one file, not a tree
		err  *regexp.Regexp
	}{
		"base tag": {
			body: siteLayer(host+"/web") + fmt.Sprintf("\n  base = %q", host+"/base:latest"),
			err: says(`Base must be pinned by digest`, host+`/base:latest" is not pinned by digest`,
				`Resolve a tag with data.immutable_image and pass its`, "`ref`"),
		},
		"base digest missing": {
			body: siteLayer(host+"/web") + fmt.Sprintf("\n  base = %q", host+"/base@"+missingDigest),
			err: says(`Cannot read the base image`, `read manifest `+host+`/base@`+missingDigest,
				`push it first`),
		},
		"layer digest not stored": {
			body: layer(`"`+missingDigest+`"`, "/srv/www"),
			err:  says(`Layer content not stored`, `layers[0].digest`, missingDigest, `Publish it first with an immutable_artifact`),
		},
		"path with dot-dot": {
			body: layer(site, "/srv/../etc"),
			err:  says(`Invalid layer path`, `layers[0].path: the path "/srv/../etc" has a ".." component: write the path without it`),
		},
		"relative path": {
			body: layer(site, "srv/www"),
			err:  says(`Invalid layer path`, `layers[0].path: the path "srv/www" is not absolute: start it with "/", such as "/srv/www"`),
		},
		"root path for a file": {
			body: layer(site, "/"),
			file: true,
			err:  says(`Invalid layer path`, `layers[0].path: the path "/" is the root directory: a single file needs its own path`, `layers[0].digest is a single file`),
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.write(map[string]string{"index.html": "<h1>hi</h1>"})
			if c.file {
				e.dir = filepath.Join(e.dir, "index.html")
			}
			proxy.Reset()
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config:      e.imageWith("", c.body),
					PlanOnly:    true,
					ExpectError: c.err,
				}},
			})
			e.storeEmpty()
			noWrites(t, proxy)
		})
	}
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// forward serves a reverse proxy to endpoint on l until the test ends.
func forward(t *testing.T, l net.Listener, endpoint string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(u), ReadHeaderTimeout: 10e9}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // ErrServerClosed at the end of the test
	}()
	t.Cleanup(func() {
		_ = srv.Close() // the test is over
		<-done
	})
}

// TestAccImageUnreachableRegistry: an image from scratch plans without
// its registry (nothing is read at plan); apply fails naming the address
// and saying it cannot be reached, and leaves nothing in state: once the
// registry answers, the next plan creates the image and apply pushes it.
// An image on a base cannot plan without the registry, and says so.
func TestAccImageUnreachableRegistry(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"index.html": "<h1>hi</h1>"})
	addr := closedAddress(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	config := e.imageWith("", siteLayer(addr+"/web"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks:   resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{expectCreate()}},
			},
			{
				Config:      config,
				ExpectError: says(`Cannot push the image`, `to `+addr+`/web:`, `cannot reach the registry at `+addr, `check the address, that it is up, and the network`, `Nothing was recorded in state`),
			},
			{
				PreConfig: func() {
					l, err := net.Listen("tcp", addr)
					if err != nil {
						t.Fatalf("listening on %s again: %v", addr, err)
					}
					forward(t, l, reg.Endpoint)
				},
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
			},
		},
	})

	e2 := newEnv(t)
	e2.write(map[string]string{"index.html": "<h1>hi</h1>"})
	addr = closedAddress(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      e2.imageWith("", siteLayer(reg.Host+"/web")+fmt.Sprintf("\n  base = %q", addr+"/base@"+missingDigest)),
			PlanOnly:    true,
			ExpectError: says(`Cannot read the base image`, `read manifest `+addr+`/base@`+missingDigest, `cannot reach the registry at `+addr),
		}},
	})
	e2.storeEmpty()
}

// manifestPut is a FaultFunc answering every manifest PUT with f.
func manifestPut(f testserver.Fault) testserver.FaultFunc {
	return func(c testserver.Call, _ int) testserver.Fault {
		if c.Method == http.MethodPut && strings.Contains(c.Path, "/manifests/") {
			return f
		}
		return testserver.Pass
	}
}

// refs are the image's reference in state and the ref the plan gave.
func stateRef(s *terraformState) string {
	return s.RootModule().Resources["immutable_image.web"].Primary.Attributes["ref"]
}

// TestAccImageManifestRefused: a registry refusing the manifest (400
// MANIFEST_INVALID, 415) fails apply naming the media type and the
// feature it lacks; no manifest is there and none is in state; once the
// registry takes it, the next apply finds every blob there (asked by
// HEAD, none uploaded again) and pushes the manifest.
func TestAccImageManifestRefused(t *testing.T) {
	requireAcc(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	for name, c := range map[string]struct {
		fault  testserver.Fault
		status string
	}{
		"400 MANIFEST_INVALID": {testserver.ManifestInvalid, "400 Bad Request"},
		"415":                  {testserver.UnsupportedMediaType, "415 Unsupported Media Type"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.write(map[string]string{"index.html": "<h1>hi</h1>", "app.js": "run()"})
			proxy := reg.Faulty(t, manifestPut(c.fault))
			host := proxy.Host()
			repo := host + "/" + strings.ToLower(strings.Fields(name)[0]) // a repository per case
			config := e.imageWith("", siteLayer(repo))
			var planned string
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{
					{
						Config:           config,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{capturePlanned("immutable_image.web", "ref", &planned)}},
						ExpectError: says(`Cannot push the image`, `push manifest sha256:`, `to `+repo+`:`,
							`the registry refused a manifest of media type application/vnd.oci.image.manifest.v1+json (`+c.status+`)`,
							`it may not support OCI image manifests`, `Nothing was recorded in state`),
					},
					{
						PreConfig: func() {
							if err := manifestAbsent(t, planned); err != nil {
								t.Fatal(err)
							}
							proxy.SetFaults(nil)
							proxy.Reset()
						},
						Config:           config,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
						Check: func(s *terraformState) error {
							if n := len(proxy.Calls(http.MethodPost, "/blobs/uploads/")) + len(proxy.Calls(http.MethodPatch, "/blobs/uploads/")) +
								len(proxy.Calls(http.MethodPut, "/blobs/uploads/")); n != 0 {
								return fmt.Errorf("%d upload requests after the blobs were pushed, want 0: %v", n, proxy.Calls("", ""))
							}
							found := 0
							for _, call := range proxy.Calls(http.MethodHead, "/blobs/sha256:") {
								if call.Status == http.StatusOK {
									found++
								}
							}
							if found != 2 { // the layer and the config
								return fmt.Errorf("%d blobs found by HEAD, want 2: %v", found, proxy.Calls("", ""))
							}
							crane(t, "validate", "--remote", stateRef(s))
							return nil
						},
					},
				},
			})
		})
	}
}

// faultLayerUpload is a plan check that, once the plan gives the image's
// first layer, makes proxy answer every completion of that layer's
// upload (PUT ?digest=) with 500, on every try.
func faultLayerUpload(proxy *testserver.Counter) plancheck.PlanCheck {
	return planCheck(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		for _, rc := range req.Plan.ResourceChanges {
			after, _ := rc.Change.After.(map[string]any)
			descs, _ := after["layer_descriptors"].([]any)
			if rc.Address != "immutable_image.web" || len(descs) == 0 {
				continue
			}
			first, _ := descs[0].(map[string]any)
			layer, _ := first["digest"].(string)
			if layer == "" {
				break
			}
			proxy.SetFaults(func(c testserver.Call, _ int) testserver.Fault {
				if c.Method == http.MethodPut && strings.Contains(c.Path, "/blobs/uploads/") && strings.Contains(c.Query, url.QueryEscape(layer)) {
					return testserver.InternalError
				}
				return testserver.Pass
			})
			return
		}
		resp.Error = fmt.Errorf("immutable_image.web has no planned layer_descriptors")
	})
}

// TestAccImageInterruptedPush: a layer whose upload the registry fails
// (500 on every try) fails apply, leaves no manifest and nothing in
// state; the next apply completes the image.
func TestAccImageInterruptedPush(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"site/index.html": "<h1>hi</h1>", "bin/server": "#!/bin/sh\n"})
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	host := proxy.Host()
	config := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
}
resource "immutable_artifact" "bin" {
  source = %q
}
resource "immutable_image" "web" {
  repository = "%s/web"
  layers = [
    { digest = immutable_artifact.site.digest, path = "/srv/www" },
    { digest = immutable_artifact.bin.digest, path = "/usr/local/bin" },
  ]
}
`, filepath.Join(e.dir, "site"), filepath.Join(e.dir, "bin"), host)
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					capturePlanned("immutable_image.web", "ref", &planned), faultLayerUpload(proxy),
				}},
				ExpectError: says(`Cannot push the image`, `push blob sha256:`, `to `+host+`/web:`,
					`the registry answered 500 Internal Server Error`, `Nothing was recorded in state: the next apply pushes what is missing`),
			},
			{
				PreConfig: func() {
					if err := manifestAbsent(t, planned); err != nil {
						t.Fatal(err)
					}
					if len(proxy.Calls(http.MethodPut, "/manifests/")) != 0 {
						t.Fatal("a manifest PUT was sent after a blob failed")
					}
					proxy.SetFaults(nil)
				},
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
				Check: func(s *terraformState) error {
					if got := stateRef(s); got != planned {
						return fmt.Errorf("pushed %s, the failed plan was for %s", got, planned)
					}
					crane(t, "validate", "--remote", planned)
					return nil
				},
			},
		},
	})
}

// TestAccImageChangedSincePlan: a saved plan applied after a layer's
// source file changed is refused, and nothing is pushed: no manifest is
// there and nothing is in state. The refusal is core's: the artifact
// hashes its source again in the final plan, and core rejects a digest
// that differs from the saved plan's before anything is applied (the
// image's own check, in Create, is for a change after that).
func TestAccImageChangedSincePlan(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"index.html": "<h1>planned</h1>"})
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	host := proxy.Host()
	config := e.imageWith("", siteLayer(host+"/web"))
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					capturePlanned("immutable_image.web", "ref", &planned),
					// Between the saved plan and its apply.
					planCheck(func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
						e.write(map[string]string{"index.html": "<h1>changed</h1>"})
						proxy.Reset()
					}),
				}},
				ExpectError: says(`Provider produced inconsistent final plan`, `immutable_artifact.site`, `.digest: was`),
			},
			{
				PreConfig: func() {
					if err := manifestAbsent(t, planned); err != nil {
						t.Fatal(err)
					}
					for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
						if calls := proxy.Calls(m, ""); len(calls) > 0 {
							t.Fatalf("the refused apply wrote to the registry: %v", calls)
						}
					}
				},
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectCreate()}},
			},
		},
	})
}

// TestAccImageChangedBeforePush: a layer's source file that changes
// after its artifact was applied, before the image is pushed, is refused
// by the image's own check as the layer streams (not blamed on the
// registry): the layer's path and file are named, no manifest is pushed,
// nothing is in state.
func TestAccImageChangedBeforePush(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"index.html": "<h1>planned</h1>"})
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	host := proxy.Host()
	config := e.imageWith("", siteLayer(host+"/web"))
	var change testHook
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6With(hooks{beforePush: change.run}),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					change.set(func(context.Context) error {
						e.write(map[string]string{"index.html": "<h1>changed</h1>"})
						return nil
					})
				},
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{capturePlanned("immutable_image.web", "ref", &planned)}},
				ExpectError: says(`Layer changed since plan`, `layers[0] no longer gives the content planned for it`,
					`"srv/www/index.html"`, `hashes to`, `A file on disk changed between plan and apply`,
					`The image's manifest was not pushed and nothing was recorded in state: run plan again`),
			},
			{
				PreConfig: func() {
					change.set(nil)
					if err := manifestAbsent(t, planned); err != nil {
						t.Fatal(err)
					}
					if calls := proxy.Calls(http.MethodPut, "/manifests/"); len(calls) > 0 {
						t.Fatalf("a manifest was pushed: %v", calls)
					}
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks:   resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{expectCreate()}},
			},
		},
	})
}
