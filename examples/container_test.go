package examples

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// siteV1 and siteV2 are the example's index.html at 1.0.0 and 1.0.1.
const (
	siteV1 = "<!doctype html>\n<title>web</title>\n<h1>Hello from an image built by immutable</h1>\n"
	siteV2 = "<!doctype html>\n<title>web</title>\n<h1>Hello from 1.0.1</h1>\n"
)

// resourceChange is one resource's change in `tofu show -json` of a plan.
type resourceChange struct {
	Address string `json:"address"`
	Change  struct {
		Actions []string        `json:"actions"`
		Before  json.RawMessage `json:"before"`
		After   json.RawMessage `json:"after"`
	} `json:"change"`
}

// showPlan returns the resource changes of the saved plan file in dir.
func showPlan(t *testing.T, dir, cfg, file string) map[string]resourceChange {
	t.Helper()
	out := must(t, dir, cfg, "show", "-json", file)
	var plan struct {
		ResourceChanges []resourceChange `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &plan); err != nil {
		t.Fatalf("show -json: %v\n%s", err, out)
	}
	changes := map[string]resourceChange{}
	for _, rc := range plan.ResourceChanges {
		changes[rc.Address] = rc
	}
	return changes
}

// attr is the string attribute name of a change's before or after value
// ("" when it is null or unknown).
func attr(t *testing.T, value json.RawMessage, name string) string {
	t.Helper()
	var m map[string]any
	if len(value) > 0 && string(value) != "null" {
		mustDo(t, json.Unmarshal(value, &m))
	}
	s, _ := m[name].(string)
	return s
}

// craneRun runs crane, go-containerregistry's CLI: a client independent of
// the provider, checking what the registry serves.
func craneRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testserver.CranePath(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// extractTar writes the flattened image filesystem of the tar file at src
// under root: directories, regular files with their modes, symbolic links.
func extractTar(t *testing.T, src, root string) {
	t.Helper()
	f, err := os.Open(src)
	mustDo(t, err)
	defer func() { _ = f.Close() }() // read only
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		mustDo(t, err)
		name := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Name, "/")))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			t.Fatalf("the image holds %q, outside its root", h.Name)
		}
		dst := filepath.Join(root, name)
		mustDo(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		switch h.Typeflag {
		case tar.TypeDir:
			mustDo(t, os.MkdirAll(dst, 0o755))
		case tar.TypeReg:
			w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, h.FileInfo().Mode().Perm())
			mustDo(t, err)
			_, err = io.Copy(w, tr)
			mustDo(t, err)
			mustDo(t, w.Close())
		case tar.TypeSymlink:
			mustDo(t, os.Symlink(h.Linkname, dst))
		default:
			t.Fatalf("the image holds %q of tar type %q, which this test does not extract", h.Name, h.Typeflag)
		}
	}
}

// runImage pulls ref with crane, flattened (`crane export`), and runs it
// as a container runtime would, but on the host: the entrypoint and cmd of
// the image config (`crane config`), in its working directory, with
// exactly its environment, PORT set to a free port. It waits for the
// server to answer on 127.0.0.1 (polling, for at most a deadline) and
// returns the body of GET /. The process is stopped when the test ends.
func runImage(t *testing.T, ref string) string {
	t.Helper()
	root := t.TempDir()
	flat := filepath.Join(t.TempDir(), "out.tar")
	craneRun(t, "export", ref, flat)
	extractTar(t, flat, root)
	var img struct {
		Config struct {
			Entrypoint []string `json:"Entrypoint"`
			Cmd        []string `json:"Cmd"`
			Env        []string `json:"Env"`
			WorkingDir string   `json:"WorkingDir"`
		} `json:"config"`
	}
	raw := craneRun(t, "config", ref)
	mustDo(t, json.Unmarshal([]byte(raw), &img))
	c := img.Config
	if len(c.Entrypoint) == 0 {
		t.Fatalf("the image config of %s has no entrypoint: %s", ref, raw)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	_, port, err := net.SplitHostPort(l.Addr().String())
	mustDo(t, err)
	mustDo(t, l.Close()) // the server takes the port next
	env := []string{"PORT=" + port}
	for _, kv := range c.Env {
		if !strings.HasPrefix(kv, "PORT=") {
			env = append(env, kv)
		}
	}

	cmd := exec.Command(filepath.Join(root, c.Entrypoint[0]), append(c.Entrypoint[1:], c.Cmd...)...)
	cmd.Dir = filepath.Join(root, c.WorkingDir)
	cmd.Env = env
	logFile := filepath.Join(t.TempDir(), "server.log")
	logf, err := os.Create(logFile)
	mustDo(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("running the entrypoint %v of %s: %v", c.Entrypoint, ref, err)
	}
	exited := make(chan struct{}) // closed once the process has exited, with waitErr set
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only if it already exited
		<-exited
		_ = logf.Close() // the server's log only
	})
	serverLog := func() string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://127.0.0.1:" + port + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close() // read whole
			mustDo(t, err)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
			}
			return string(body)
		}
		select {
		case <-exited:
			t.Fatalf("the image's entrypoint exited (%v) before answering on %s:\n%s", waitErr, url, serverLog())
		case <-ctx.Done():
			t.Fatalf("the image's entrypoint did not answer on %s within 30s (%v):\n%s", url, err, serverLog())
		case <-tick.C:
		}
	}
}

// TestAccContainerExample runs examples/container end to end against a
// CNCF distribution registry on 127.0.0.1, behind a proxy counting its
// requests. The first apply builds the Go server (once), pushes the image
// and publishes and deploys web 1.0.0; crane pulls the image flattened,
// and its entrypoint, run on the host with the image's config, serves the
// site. A changed site plans the image's digest — what crane then says the
// registry serves — and builds nothing. Then the rollback: pinning 1.0.0
// plans one in-place update, the deployment's image reference, runs no
// build step and sends the registry no write.
func TestAccContainerExample(t *testing.T) {
	cli(t)
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the test runs the example image's linux/amd64 server on the host")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the example builds a Go program: go is not on PATH")
	}
	testserver.CranePath(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	cfg := mirror(t)
	dir := filepath.Join(t.TempDir(), "container")
	copyDir(t, "container", dir)
	vars := []string{"-var", "registry=" + proxy.Host()}
	apply := append([]string{"apply", "-input=false", "-auto-approve"}, vars...)
	must(t, dir, cfg, "init", "-input=false")

	// 1.0.0: built, pushed, published, deployed.
	if ran := logged(t, dir, cfg, apply...); len(ran) != 1 {
		t.Fatalf("the first apply ran %v, want the server's build once", ran)
	}
	ref1 := output(t, dir, cfg, "image")
	if !strings.HasPrefix(ref1, proxy.Host()+"/web@sha256:") {
		t.Fatalf("image %q is not the registry's web repository by digest", ref1)
	}
	if v, d := output(t, dir, cfg, "deployed_version"), output(t, dir, cfg, "deployed_image"); v != "1.0.0" || d != ref1 {
		t.Fatalf("deployed %s %s, want 1.0.0 %s", v, d, ref1)
	}
	if body := runImage(t, ref1); body != siteV1 {
		t.Fatalf("1.0.0's server answers %q, want site/index.html %q", body, siteV1)
	}
	if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, vars...)...); code != 0 {
		t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
	}

	// 1.0.1: the site changes; the build is a hit, so the image's digest
	// is known at plan, and it is what the registry serves after apply.
	mustDo(t, os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte(siteV2), 0o644))
	must(t, dir, cfg, append([]string{"plan", "-input=false", "-out=p.tfplan"}, vars...)...)
	changes := showPlan(t, dir, cfg, "p.tfplan")
	planned := attr(t, changes["immutable_image.web"].Change.After, "digest")
	if !strings.HasPrefix(planned, "sha256:") {
		t.Fatalf("the plan does not know the image's digest: %s", changes["immutable_image.web"].Change.After)
	}
	if a := changes["immutable_build.server"].Change.Actions; len(a) != 1 || a[0] != "no-op" {
		t.Fatalf("a changed site planned %v for the server's build, want no-op", a)
	}
	proxy.Reset()
	if ran := logged(t, dir, cfg, "apply", "-input=false", "p.tfplan"); len(ran) != 0 {
		t.Fatalf("publishing a changed site ran %v, want no build", ran)
	}
	ref2 := output(t, dir, cfg, "image")
	if ref2 != proxy.Host()+"/web@"+planned {
		t.Fatalf("applied image %s, planned digest %s", ref2, planned)
	}
	if got := craneRun(t, "digest", ref2); got != planned {
		t.Fatalf("the registry serves %s for %s, the plan said %s", got, ref2, planned)
	}
	puts := proxy.Calls("PUT", "")
	if len(puts) == 0 {
		t.Fatalf("the proxy counted no PUT while the image was pushed: it counts nothing (%v)", proxy.Calls("", ""))
	}
	t.Logf("publishing 1.0.1 (a changed site): %d registry requests, %d PUT", len(proxy.Calls("", "")), len(puts))
	if v, d := output(t, dir, cfg, "deployed_version"), output(t, dir, cfg, "deployed_image"); v != "1.0.1" || d != ref2 {
		t.Fatalf("deployed %s %s, want 1.0.1 %s", v, d, ref2)
	}
	if body := runImage(t, ref2); body != siteV2 {
		t.Fatalf("1.0.1's server answers %q, want %q", body, siteV2)
	}

	// The rollback: pin 1.0.0.
	proxy.Reset()
	rollback := append(append([]string{}, vars...), "-var", "web_version=1.0.0")
	must(t, dir, cfg, append([]string{"plan", "-input=false", "-out=p.tfplan"}, rollback...)...)
	var changed []string
	for addr, rc := range showPlan(t, dir, cfg, "p.tfplan") {
		if a := strings.Join(rc.Change.Actions, ","); a != "no-op" && a != "read" {
			changed = append(changed, addr+": "+a)
		}
	}
	if len(changed) != 1 || changed[0] != "terraform_data.deployment: update" {
		t.Fatalf("the rollback plans %v, want one in-place update of terraform_data.deployment", changed)
	}
	dep := showPlan(t, dir, cfg, "p.tfplan")["terraform_data.deployment"].Change
	if from, to := attr(t, dep.Before, "input"), attr(t, dep.After, "input"); from != ref2 || to != ref1 {
		t.Fatalf("the rollback changes the deployment's image from %q to %q, want %s to %s", from, to, ref2, ref1)
	}
	if ran := logged(t, dir, cfg, "apply", "-input=false", "p.tfplan"); len(ran) != 0 {
		t.Fatalf("the rollback ran %v, want no build", ran)
	}
	for _, m := range []string{"PUT", "POST", "PATCH", "DELETE"} {
		if calls := proxy.Calls(m, ""); len(calls) != 0 {
			t.Errorf("the rollback sent the registry %d %s requests, want none: %v", len(calls), m, calls)
		}
	}
	if v, d := output(t, dir, cfg, "deployed_version"), output(t, dir, cfg, "deployed_image"); v != "1.0.0" || d != ref1 {
		t.Fatalf("rolled back to %s %s, want 1.0.0 %s", v, d, ref1)
	}
	t.Logf("the rollback (plan and apply): %d registry requests", len(proxy.Calls("", "")))

	// The deploy configurations, without their providers, read the same
	// store: each gives its platform the pinned version's reference.
	store := "file://" + filepath.Join(dir, ".immutable")
	t.Run("kubernetes", func(t *testing.T) {
		kdir, free := prepareWithoutForeign(t, cfg, "container/kubernetes", "")
		image := free.standIns["kubernetes_deployment.web.spec.template.spec.container.image"]
		if image == "" {
			t.Fatalf("the deployment's container image does not read our data source: %v", free.standIns)
		}
		for version, want := range map[string]string{"": ref2, "1.0.0": ref1} {
			args := append([]string{"apply", "-input=false", "-auto-approve", "-var", "store=" + store}, versionVar("web_version", version)...)
			must(t, kdir, cfg, args...)
			if got := output(t, kdir, cfg, image); got != want {
				t.Errorf("web_version %q: the deployment's image would be %s, want %s", version, got, want)
			}
		}
	})
	t.Run("ecs", func(t *testing.T) {
		edir, free := prepareWithoutForeign(t, cfg, "container/ecs", "")
		defs := free.standIns["aws_ecs_task_definition.web.container_definitions"]
		if defs == "" {
			t.Fatalf("the task definition's container_definitions do not read our data source: %v", free.standIns)
		}
		for version, want := range map[string]string{"": ref2, "1.0.0": ref1} {
			args := append([]string{"apply", "-input=false", "-auto-approve", "-var", "store=" + store, "-var", "execution_role_arn=arn:aws:iam::123456789012:role/ecs"}, versionVar("web_version", version)...)
			must(t, edir, cfg, args...)
			var containers []struct {
				Image string `json:"image"`
			}
			mustDo(t, json.Unmarshal([]byte(output(t, edir, cfg, defs)), &containers))
			if len(containers) != 1 || containers[0].Image != want {
				t.Errorf("web_version %q: the task's containers would be %+v, want one with image %s", version, containers, want)
			}
		}
	})
	t.Run("lambda", func(t *testing.T) {
		// The Lambda example deploys a release named api: publish one
		// naming the pushed images in the same store.
		pub := t.TempDir()
		mustDo(t, os.WriteFile(filepath.Join(pub, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = %q
}
variable "image" {
  type = string
}
resource "immutable_release" "api" {
  name      = "api"
  artifacts = {}
  images    = { api = var.image }
}
`, store)), 0o644))
		must(t, pub, cfg, "init", "-input=false")
		must(t, pub, cfg, "apply", "-input=false", "-auto-approve", "-var", "image="+ref1)
		must(t, pub, cfg, "apply", "-input=false", "-auto-approve", "-var", "image="+ref2)
		ldir, free := prepareWithoutForeign(t, cfg, "container/lambda", "")
		uri := free.standIns["aws_lambda_function.api.image_uri"]
		if uri == "" {
			t.Fatalf("the function's image_uri does not read our data source: %v", free.standIns)
		}
		for version, want := range map[string]string{"": ref2, "1.0.0": ref1} {
			args := append([]string{"apply", "-input=false", "-auto-approve", "-var", "store=" + store, "-var", roleVar}, versionVar("api_version", version)...)
			must(t, ldir, cfg, args...)
			if got := output(t, ldir, cfg, uri); got != want {
				t.Errorf("api_version %q: image_uri would be %s, want %s", version, got, want)
			}
		}
	})
}

// versionVar sets the variable name to version, or leaves it to its
// default (the latest) when version is "".
func versionVar(name, version string) []string {
	if version == "" {
		return nil
	}
	return []string{"-var", name + "=" + version}
}
