package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// storeImage stores files as a tree and an image of it at /app (on base,
// when not nil), with its record, as immutable_image does, and returns
// the manifest digest.
func (e *env) storeImage(files map[string]string, base *image.Base) string {
	e.t.Helper()
	ctx := context.Background()
	dir := e.t.TempDir()
	for name, body := range files {
		p, mode := filepath.Join(dir, name), fs.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		must(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(e.t, os.WriteFile(p, []byte(body), mode))
		must(e.t, os.Chmod(p, mode))
	}
	st := e.backend()
	m, err := st.PutDir(ctx, dir, optionsNone)
	must(e.t, err)
	l, err := image.DescribeLayer(ctx, image.StoreSource(st), image.LayerSpec{Tree: m.Digest(), Path: "/app", Compression: image.Gzip})
	must(e.t, err)
	img, err := image.Assemble(base, []image.Layer{l}, image.Config{Cmd: []string{"/app/bin/deploy.sh"}},
		image.Platform{OS: "linux", Architecture: "amd64"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	must(e.t, err)
	must(e.t, image.PutRecord(ctx, st, image.NewRecord(img, base, []image.Layer{l}), img.Manifest, img.Config))
	return img.Digest.String()
}

func (e *env) imageExportConfig(manifest, layout, tarball string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "layout" {
  digest = %[1]q
  path   = %[2]q
  format = "oci-layout"
}
resource "immutable_export" "tar" {
  digest = %[1]q
  path   = %[3]q
  format = "docker-archive"
}
`, manifest, layout, tarball)
}

// layoutIs checks that dir is an OCI image layout of the image manifest
// and nothing else: index.json names it, every blob hashes to its name,
// and the blobs are the manifest's.
func layoutIs(dir, manifest string) error {
	var idx struct{ Manifests []struct{ Digest string } }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != manifest {
		return fmt.Errorf("index.json is %s (%v), want it to name %s", b, err, manifest)
	}
	m, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(manifest, "sha256:")))
	if err != nil {
		return err
	}
	want := map[string]bool{strings.TrimPrefix(manifest, "sha256:"): true}
	for _, s := range regexp.MustCompile(`sha256:([0-9a-f]{64})`).FindAllStringSubmatch(string(m), -1) {
		want[s[1]] = true
	}
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		sum, _, err := digest.HashFile(context.Background(), filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil || sum.Hex() != e.Name() {
			return fmt.Errorf("blob %s hashes to %s (%v)", e.Name(), sum.Hex(), err)
		}
		if !want[e.Name()] {
			return fmt.Errorf("blob %s is not the image's", e.Name())
		}
		delete(want, e.Name())
	}
	if len(want) > 0 {
		return fmt.Errorf("blobs missing: %v", want)
	}
	return nil
}

// tarballIs checks that the docker-archive at p hashes to the state's
// sha256 and that GNU tar reads manifest.json naming the image's config.
func tarballIs(st *terraform.State, p, manifest string) error {
	sum, _, err := digest.HashFile(context.Background(), p)
	if err != nil {
		return err
	}
	if got := st.RootModule().Resources["immutable_export.tar"].Primary.Attributes["sha256"]; got != sum.Hex() {
		return fmt.Errorf("the state says sha256 %s, the file hashes to %s", got, sum.Hex())
	}
	out, err := exec.Command("tar", "-xOf", p, "manifest.json").Output()
	if err != nil {
		return fmt.Errorf("tar -xOf %s manifest.json: %v", p, err)
	}
	m, err := exec.Command("tar", "-xOf", p, "blobs/sha256/"+strings.TrimPrefix(manifest, "sha256:")).Output()
	if err != nil || digest.Bytes(m).String() != manifest {
		return fmt.Errorf("the archive's manifest blob: %v", err)
	}
	var mf []struct{ Config string }
	if err := json.Unmarshal(out, &mf); err != nil || len(mf) != 1 || !bytes.Contains(m, []byte(strings.TrimPrefix(mf[0].Config, "blobs/sha256/"))) {
		return fmt.Errorf("manifest.json is %s (%v)", out, err)
	}
	return nil
}

// TestAccExport_image: an image built from a stored artifact is exported
// as an OCI image layout (its tree known at plan) and as a docker-archive
// (its sha256 known after apply); the next plan is empty; another image
// updates both in place; a layout blob removed behind Terraform's back is
// drift, written again; destroy removes both.
func TestAccExport_image(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatalf("GNU tar reads the docker-archive back: %v", err)
	}
	forEachStore(t, func(t *testing.T, e *env) {
		d1 := e.storeImage(siteFiles, nil)
		d2 := e.storeImage(siteV2, nil)
		dir := t.TempDir()
		layout, tarball := filepath.Join(dir, "oci"), filepath.Join(dir, "image.tar")
		var gone string
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			CheckDestroy: func(*terraform.State) error {
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					return fmt.Errorf("destroy left %v", entries)
				}
				return nil
			},
			Steps: []resource.TestStep{
				{
					Config: e.imageExportConfig(d1, layout, tarball),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue("immutable_export.layout", tfjsonpath.New("id"), knownvalue.StringExact(layout)),
						plancheck.ExpectKnownValue("immutable_export.layout", tfjsonpath.New("sha256"), knownvalue.Null()),
						plancheck.ExpectKnownValue("immutable_export.tar", tfjsonpath.New("format"), knownvalue.StringExact("docker-archive")),
						plancheck.ExpectUnknownValue("immutable_export.tar", tfjsonpath.New("sha256")),
					}},
					Check: func(st *terraform.State) error {
						return errors.Join(layoutIs(layout, d1), tarballIs(st, tarball, d1))
					},
				},
				{
					Config:           e.imageExportConfig(d1, layout, tarball),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
				{
					Config: e.imageExportConfig(d2, layout, tarball),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_export.layout", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("immutable_export.tar", plancheck.ResourceActionUpdate),
					}},
					Check: func(st *terraform.State) error {
						return errors.Join(layoutIs(layout, d2), tarballIs(st, tarball, d2))
					},
				},
				{
					PreConfig: func() {
						gone = "blobs/sha256/" + strings.TrimPrefix(d2, "sha256:")
						must(t, os.Remove(filepath.Join(layout, filepath.FromSlash(gone))))
					},
					Config: e.imageExportConfig(d2, layout, tarball),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("immutable_export.layout", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("immutable_export.tar", plancheck.ResourceActionNoop),
						driftWas("immutable_export.layout", "blobs/sha256/"+strings.TrimPrefix(d2, "sha256:")+" missing"),
					}},
					Check: func(*terraform.State) error { return layoutIs(layout, d2) },
				},
			},
		})
	})
}

// TestAccExport_imageRefused: an image format for what is not an image,
// and an image export into the store, are refused at plan with nothing
// written.
func TestAccExport_imageRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	img := e.storeImage(siteFiles, nil)
	fileDigest := digest.Bytes([]byte("<h1>v1</h1>\n")).String()
	dir := t.TempDir()
	var steps []resource.TestStep
	for _, c := range []struct {
		cfg  string
		want string
	}{
		{e.exportConfig(d1, filepath.Join(dir, "a"), `format = "oci-layout"`), `(?s)Not an image.*directory\s+artifact\s+is\s+exported\s+as`},
		{e.exportConfig(fileDigest, filepath.Join(dir, "b"), `format = "docker-archive"`), `(?s)Not an image.*names\s+a\s+file\s+in\s+the\s+store`},
		{e.exportConfig(img, filepath.Join(e.store, "blobs", "x"), `format = "oci-layout"`), `(?s)Refusing to write path.*inside the store`},
	} {
		steps = append(steps, resource.TestStep{Config: c.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(c.want)})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps:                    steps,
		CheckDestroy: func(*terraform.State) error {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				return fmt.Errorf("a refused plan wrote %v", entries)
			}
			return nil
		},
	})
}

// pushBase builds an image of files from scratch and pushes it to
// repository by digest, as a base image another image is built on.
func (e *env) pushBase(repository string, files map[string]string) *image.Base {
	e.t.Helper()
	ctx := context.Background()
	dir := e.t.TempDir()
	for name, body := range files {
		must(e.t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		must(e.t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	st := e.backend()
	m, err := st.PutDir(ctx, dir, optionsNone)
	must(e.t, err)
	var layer bytes.Buffer
	l, err := image.WriteLayer(ctx, image.StoreSource(st), image.LayerSpec{Tree: m.Digest(), Path: "/etc/base", Compression: image.Gzip}, &layer)
	must(e.t, err)
	img, err := image.Assemble(nil, []image.Layer{l}, image.Config{Env: []string{"PATH=/usr/bin"}},
		image.Platform{OS: "linux", Architecture: "amd64"}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	must(e.t, err)
	c, err := registry.New(registry.Options{})
	must(e.t, err)
	_, err = c.Push(ctx, repository, img, nil, func(context.Context, int) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
	})
	must(e.t, err)
	return &image.Base{Ref: repository + "@" + img.Digest.String(), MediaType: img.MediaType, Manifest: img.Manifest, Config: img.Config}
}

// TestAccExport_imageOnABase: an image built on a base pushed to a real
// registry is exported with the base's layer read from that registry and
// its own encoded from the store; planning it makes no registry request;
// crane, run as its own program, validates the docker-archive and pushes
// the layout to the registry as the very manifest digest. The same image
// on a base whose registry is unreachable fails at apply naming the base,
// with nothing written.
func TestAccExport_imageOnABase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	proxy := reg.Count(t)
	base := e.pushBase(proxy.Host()+"/base", map[string]string{"os-release": "ID=test\n"})
	d := e.storeImage(siteFiles, base)
	dir := t.TempDir()
	layout, tarball := filepath.Join(dir, "oci"), filepath.Join(dir, "image.tar")
	// The same base manifest at an address where nothing listens.
	unreachable := *base
	unreachable.Ref = "127.0.0.1:1/base@" + strings.SplitN(base.Ref, "@", 2)[1]
	dead := e.storeImage(siteV2, &unreachable)
	deadDir := t.TempDir()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		CheckDestroy: func(*terraform.State) error {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				return fmt.Errorf("destroy left %v", entries)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				PreConfig: proxy.Reset,
				Config:    e.imageExportConfig(d, layout, tarball),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					noCalls(proxy),
				}},
				Check: func(st *terraform.State) error {
					if err := errors.Join(layoutIs(layout, d), tarballIs(st, tarball, d)); err != nil {
						return err
					}
					if n := len(proxy.Calls("GET", "/blobs/")); n != 2 {
						return fmt.Errorf("the base layer was read %d times, want once per export", n)
					}
					crane(t, "validate", "--tarball", tarball)
					crane(t, "push", layout, reg.Host+"/copy:v1")
					if got := crane(t, "digest", reg.Host+"/copy:v1"); got != d {
						return fmt.Errorf("the layout pushed by crane is %s, the image %s", got, d)
					}
					crane(t, "validate", "--remote", reg.Host+"/copy@"+d)
					return nil
				},
			},
			{
				PreConfig:        proxy.Reset,
				Config:           e.imageExportConfig(d, layout, tarball),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan(), noCalls(proxy)}},
			},
			{
				Config: e.imageExportConfig(d, layout, tarball) + fmt.Sprintf(`
resource "immutable_export" "dead" {
  digest = %q
  path   = "%s/oci"
  format = "oci-layout"
}
`, dead, deadDir),
				ExpectError: regexp.MustCompile(`(?s)Cannot read the base image's layers.*127\.0\.0\.1:1/base@sha256:.*from\s+scratch`),
				Check: func(*terraform.State) error {
					if entries, _ := os.ReadDir(deadDir); len(entries) != 0 {
						return fmt.Errorf("a failed export wrote %v", entries)
					}
					return nil
				},
			},
		},
	})
}

// TestAccExport_imageOfImmutableImage: the whole chain in one apply. An
// artifact, an immutable_image of it pushed to a real registry, and an
// export of that image's digest as an OCI layout, which crane pushes
// elsewhere as the very digest the registry serves.
func TestAccExport_imageOfImmutableImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	e.write(map[string]string{"index.html": "<h1>v1</h1>", "css/site.css": "body{}"})
	layout := filepath.Join(t.TempDir(), "oci")
	cfg := imageConfig(e, reg.Host, "") + fmt.Sprintf(`
resource "immutable_export" "layout" {
  digest = immutable_image.web.digest
  path   = %q
  format = "oci-layout"
}
`, layout)
	var planned string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					capturePlanned("immutable_image.web", "digest", &planned),
					plancheck.ExpectKnownValue("immutable_export.layout", tfjsonpath.New("id"), knownvalue.StringExact(layout)),
				}},
				Check: func(*terraform.State) error {
					if err := layoutIs(layout, planned); err != nil {
						return err
					}
					crane(t, "push", layout, reg.Host+"/copy:v1")
					if got := crane(t, "digest", reg.Host+"/copy:v1"); got != planned {
						return fmt.Errorf("the layout pushed by crane is %s, the image %s", got, planned)
					}
					if got := crane(t, "digest", reg.Host+"/web@"+planned); got != planned {
						return fmt.Errorf("the registry serves %s for the image %s", got, planned)
					}
					return nil
				},
			},
			{
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}
