package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
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

var _ = os.Getenv
