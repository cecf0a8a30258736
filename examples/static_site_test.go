package examples

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestAccStaticSite runs examples/static-site end to end, as `make demo`
// tells it, on the local store and on S3: publish the site as 1.0.0 and
// deploy it into the directory a web server (started here, on 127.0.0.1)
// serves; change a file, publish 1.0.1 and deploy it; roll back by pinning
// 1.0.0. After each step the served page is exactly the version's bytes,
// and the rollback updates the export in place without storing anything.
func TestAccStaticSite(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	t.Run("file", func(t *testing.T) {
		testStaticSite(t, cfg, func(dir string) []string {
			return storeObjects(t, filepath.Join(dir, ".immutable"))
		})
	})
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		bucket := srv.NewBucket(t) // also sets the server's credentials for the CLI
		// Both workspaces take the store from their variables, as a team
		// would set them in CI.
		t.Setenv("TF_VAR_store", "s3://"+bucket+"/site")
		t.Setenv("TF_VAR_s3_endpoint", srv.Endpoint)
		t.Setenv("TF_VAR_s3_region", srv.Region)
		b, err := s3store.New(context.Background(), bucket, "", srv.Settings())
		mustDo(t, err)
		testStaticSite(t, cfg, func(dir string) []string {
			if _, err := os.Stat(filepath.Join(dir, ".immutable")); !os.IsNotExist(err) {
				t.Fatalf("a local store was created beside the S3 one (stat: %v)", err)
			}
			keys, err := b.List(context.Background(), "") // the whole bucket
			mustDo(t, err)
			return keys
		})
	})
}

func testStaticSite(t *testing.T, cfg string, objects func(dir string) []string) {
	dir := filepath.Join(t.TempDir(), "static-site")
	copyDir(t, "static-site", dir)
	publish, deploy := filepath.Join(dir, "publish"), filepath.Join(dir, "deploy")
	index := filepath.Join(dir, "site", "index.html")
	v1, err := os.ReadFile(index)
	mustDo(t, err)
	css, err := os.ReadFile(filepath.Join(dir, "site", "style.css"))
	mustDo(t, err)

	// The web server: whatever deploy/ wrote to www/ (the default www_dir).
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "www"))))
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 30 * time.Second
	get := func(p string) (int, []byte) {
		t.Helper()
		resp, err := client.Get(srv.URL + p)
		mustDo(t, err)
		defer func() { _ = resp.Body.Close() }() // read to the end below
		b, err := io.ReadAll(resp.Body)
		mustDo(t, err)
		return resp.StatusCode, b
	}
	serves := func(step string, page []byte) {
		t.Helper()
		if code, b := get("/"); code != http.StatusOK || string(b) != string(page) {
			t.Fatalf("%s: GET / = %d:\n%s\nwant 200:\n%s", step, code, b, page)
		}
		if code, b := get("/style.css"); code != http.StatusOK || string(b) != string(css) {
			t.Fatalf("%s: GET /style.css = %d:\n%s\nwant 200:\n%s", step, code, b, css)
		}
	}
	emptyPlan := func(step, ws string, args ...string) {
		t.Helper()
		if out, code := run(t, ws, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, args...)...); code != 0 {
			t.Fatalf("%s: plan %v in %s is not empty (exit %d)\n%s", step, args, filepath.Base(ws), code, out)
		}
	}

	must(t, publish, cfg, "init", "-input=false")
	must(t, deploy, cfg, "init", "-input=false")
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Fatalf("before any deploy: GET / = %d, want 404", code)
	}

	// Publish 1.0.0 and deploy it.
	must(t, publish, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, publish, cfg, "version"); v != "1.0.0" {
		t.Fatalf("first publish: %s", v)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Fatalf("publishing alone deployed something: GET / = %d, want 404", code)
	}
	must(t, deploy, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, deploy, cfg, "deployed_version"); v != "1.0.0" {
		t.Fatalf("first deploy: %s", v)
	}
	serves("deploy 1.0.0", v1)
	entries, err := os.ReadDir(filepath.Join(dir, "www"))
	mustDo(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"index.html", "style.css"}) {
		t.Fatalf("www holds %v, want the site's two files", names)
	}
	emptyPlan("after deploying 1.0.0", publish)
	emptyPlan("after deploying 1.0.0", deploy)

	// Change a file, publish 1.0.1: nothing served changes until deploy.
	v2 := []byte(strings.Replace(string(v1), "first edition", "second edition", 1))
	if string(v2) == string(v1) {
		t.Fatalf("site/index.html no longer says %q: update the test's edit\n%s", "first edition", v1)
	}
	mustDo(t, os.WriteFile(index, v2, 0o644))
	must(t, publish, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, publish, cfg, "version"); v != "1.0.1" {
		t.Fatalf("second publish: %s", v)
	}
	serves("publish 1.0.1", v1)
	must(t, deploy, cfg, "apply", "-input=false", "-auto-approve")
	if v := output(t, deploy, cfg, "deployed_version"); v != "1.0.1" {
		t.Fatalf("second deploy: %s", v)
	}
	serves("deploy 1.0.1", v2)

	// Roll back by pinning 1.0.0: the plan updates the export in place and
	// plans nothing else; the publish workspace is untouched (its artifact
	// and release are not rebuilt); the store gains no object.
	before := objects(dir)
	if len(before) == 0 {
		t.Fatal("the store holds no object after two publishes: the count below would prove nothing")
	}
	actions := planActions(t, deploy, cfg, "-var", "deploy_version=1.0.0")
	for addr, a := range actions {
		switch {
		case addr == "immutable_export.www" && a == "update":
		case addr == "data.immutable_release.site" && a == "read":
		default:
			t.Errorf("rollback plans %s: %q (all: %v)", addr, a, actions)
		}
	}
	if actions["immutable_export.www"] != "update" {
		t.Fatalf("rollback plans no in-place update of the export: %v", actions)
	}
	if out := must(t, deploy, cfg, "show", "p.tfplan"); !strings.Contains(out, "immutable_export.www will be updated in-place") ||
		!strings.Contains(out, "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Errorf("the rollback plan does not read as one in-place update:\n%s", out)
	}
	published := planActions(t, publish, cfg)
	for _, addr := range []string{"immutable_artifact.site", "immutable_release.site"} {
		if a := published[addr]; a != "no-op" {
			t.Errorf("during the rollback, publish/ plans %s: %q, want no-op (all: %v)", addr, a, published)
		}
	}
	must(t, deploy, cfg, "apply", "-input=false", "p.tfplan")
	if v := output(t, deploy, cfg, "deployed_version"); v != "1.0.0" {
		t.Fatalf("rollback deployed %s", v)
	}
	serves("roll back to 1.0.0", v1)
	if after := objects(dir); !slices.Equal(after, before) {
		t.Fatalf("the rollback changed the store: %d objects before, %d after\nbefore: %v\nafter:  %v", len(before), len(after), before, after)
	}
	// The pin holds: planning with it again is empty.
	emptyPlan("after the rollback", deploy, "-var", "deploy_version=1.0.0")
}
