package provider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

const exp = "immutable_export.site"

// publishTwo stores two versions of a site as artifacts (through the
// provider, in one throwaway apply) and returns their digests.
func (e *env) publishTwo(v1, v2 map[string]string) (d1, d2 string) {
	e.t.Helper()
	a, b := filepath.Join(e.dir, "v1"), filepath.Join(e.dir, "v2")
	for dir, files := range map[string]map[string]string{a: v1, b: v2} {
		for name, body := range files {
			p := filepath.Join(dir, name)
			mode := fs.FileMode(0o644)
			if name[len(name)-1] == '*' {
				p, mode = p[:len(p)-1], 0o755
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), mode); err != nil {
				e.t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	st := e.backend()
	for _, dir := range []string{a, b} {
		if _, err := st.PutDir(context.Background(), dir, optionsNone); err != nil {
			e.t.Fatal(err)
		}
	}
	return digestOf(e.t, a), digestOf(e.t, b)
}

func (e *env) exportConfig(dig, target string, extra ...string) string {
	more := ""
	for _, x := range extra {
		more += "\n  " + x
	}
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "site" {
  digest = %q
  path   = %q%s
}
`, dig, target, more)
}

// treeIs checks that dir holds exactly the tree with digest want.
func treeIs(t *testing.T, dir, want string) error {
	t.Helper()
	if _, err := os.Lstat(dir); err != nil {
		return err
	}
	if got := digestOf(t, dir); got != want {
		return fmt.Errorf("%s holds %s, want %s", dir, got, want)
	}
	return nil
}

var siteV2 = map[string]string{
	"index.html":     "<h1>v2</h1>\n",
	"css/site.css":   "body{}\n",
	"bin/deploy.sh*": "#!/bin/sh\n",
	"new.html":       "new\n",
}

// TestAccExport_lifecycle: a stored tree is written to a directory (known
// id at plan, nothing else in the parent), the next plan is empty, a new
// digest updates it in place (rollforward and rollback), a file changed or
// added behind Terraform's back is drift that the next apply corrects, a
// deleted export is written again, and destroy removes it.
func TestAccExport_lifecycle(t *testing.T) {
	t.Parallel()
	forEveryStore(t, func(t *testing.T, e *env) {
		d1, d2 := e.publishTwo(siteFiles, siteV2)
		out := filepath.Join(t.TempDir(), "www", "site")
		inode := func() uint64 { return inodeOf(t, out) }
		var first uint64
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			CheckDestroy: func(*terraform.State) error {
				if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("destroy left %s: %v", out, err)
				}
				return nil
			},
			Steps: []resource.TestStep{
				{
					Config: e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionCreate),
						plancheck.ExpectKnownValue(exp, tfjsonpath.New("id"), knownvalue.StringExact(out)),
						plancheck.ExpectKnownValue(exp, tfjsonpath.New("format"), knownvalue.StringExact("directory")),
						plancheck.ExpectKnownValue(exp, tfjsonpath.New("sha256"), knownvalue.Null()),
					}},
					Check: func(*terraform.State) error {
						first = inode()
						if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
							return fmt.Errorf("the parent holds %d entries, want only the export", len(entries))
						}
						return treeIs(t, out, d1)
					},
				},
				{
					Config:           e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
				{
					Config: e.exportConfig(d2, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
					}},
					Check: func(*terraform.State) error {
						if inode() == first {
							return errors.New("the directory was rewritten in place, not swapped in")
						}
						return treeIs(t, out, d2)
					},
				},
				{
					// Roll back by pinning the old digest.
					Config: e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
					}},
					Check: func(*terraform.State) error { return treeIs(t, out, d1) },
				},
				{
					// Someone adds a file: not the export's, not drift.
					PreConfig: func() {
						must(t, os.WriteFile(filepath.Join(out, "extra.html"), []byte("theirs"), 0o644))
					},
					Config:           e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
				{
					// Drift: a file edited and one removed behind Terraform's
					// back, named in the plan, written again; the added file
					// is kept.
					PreConfig: func() {
						must(t, os.WriteFile(filepath.Join(out, "index.html"), []byte("defaced"), 0o644))
						must(t, os.Remove(filepath.Join(out, "css", "site.css")))
					},
					Config: e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(exp, tfjsonpath.New("drift"), knownvalue.Null()),
						plancheck.ExpectKnownValue(exp, tfjsonpath.New("digest"), knownvalue.StringExact(d1)),
						driftWas(exp, "css/site.css missing, index.html changed"),
					}},
					Check: func(*terraform.State) error {
						if b, err := os.ReadFile(filepath.Join(out, "extra.html")); err != nil || string(b) != "theirs" {
							return fmt.Errorf("a file someone added was lost: %q %v", b, err)
						}
						must(t, os.Remove(filepath.Join(out, "extra.html")))
						return treeIs(t, out, d1)
					},
				},
				{
					// Gone: written again.
					PreConfig: func() { must(t, os.RemoveAll(out)) },
					Config:    e.exportConfig(d1, out),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionCreate),
					}},
					Check: func(*terraform.State) error { return treeIs(t, out, d1) },
				},
			},
		})
	})
}

// TestAccExport_archiveHashKnownAtPlan: a tree exported as zip and tar.gz
// has its sha256 and base64sha256 known at plan, before any archive of it
// is stored, equal to the bytes written; a file artifact exported as a
// file has its own digest as sha256.
func TestAccExport_archiveHashKnownAtPlan(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		d1, _ := e.publishTwo(siteFiles, siteV2)
		dir := t.TempDir()
		fileSum := sha256.Sum256([]byte("<h1>v1</h1>\n"))
		fileDigest := "sha256:" + hex.EncodeToString(fileSum[:])
		cfg := e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "zip" {
  digest = %[1]q
  path   = "%[2]s/site.zip"
  format = "zip"
}
resource "immutable_export" "tgz" {
  digest = %[1]q
  path   = "%[2]s/site.tar.gz"
  format = "tar.gz"
}
resource "immutable_export" "file" {
  digest = %[3]q
  path   = "%[2]s/index.html"
}
`, d1, dir, fileDigest)
		var planned = map[string]string{}
		record := func(name string) plancheck.PlanCheck {
			return planValue("immutable_export."+name, "sha256", func(v string) { planned[name] = v })
		}
		fileHolds := func(name, file string) resource.TestCheckFunc {
			return func(s *terraform.State) error {
				b, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				attrs := s.RootModule().Resources["immutable_export."+name].Primary.Attributes
				if got := hex.EncodeToString(sum[:]); got != planned[name] || attrs["sha256"] != got ||
					attrs["base64sha256"] != base64.StdEncoding.EncodeToString(sum[:]) {
					return fmt.Errorf("%s: file %s, planned %s, state %s / %s", name, got, planned[name], attrs["sha256"], attrs["base64sha256"])
				}
				return nil
			}
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					record("zip"), record("tgz"), record("file"),
					plancheck.ExpectKnownValue("immutable_export.file", tfjsonpath.New("sha256"), knownvalue.StringExact(hex.EncodeToString(fileSum[:]))),
					plancheck.ExpectKnownValue("immutable_export.file", tfjsonpath.New("format"), knownvalue.StringExact("file")),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(fileHolds("zip", "site.zip"), fileHolds("tgz", "site.tar.gz"), fileHolds("file", "index.html")),
			}, {
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			}},
		})
	})
}

// planValue reads a known string attribute of the plan.
func planValue(addr, attr string, f func(string)) plancheck.PlanCheck {
	return planValueCheck{addr, attr, f}
}

type planValueCheck struct {
	addr, attr string
	f          func(string)
}

func (c planValueCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.addr {
			continue
		}
		after, _ := rc.Change.After.(map[string]any)
		v, ok := after[c.attr].(string)
		if !ok {
			resp.Error = fmt.Errorf("%s.%s is not a known string in the plan", c.addr, c.attr)
			return
		}
		c.f(v)
		return
	}
	resp.Error = fmt.Errorf("%s not in the plan", c.addr)
}

var optionsNone = digest.Options{}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no inode numbers on this system")
	}
	return st.Ino
}

// TestAccExport_downloadsOnlyWhatChanged: on S3, the first export reads
// every file's blob once; rolling forward to a version with one changed
// and one new file reads exactly those two blobs (the unchanged files are
// copied from the old export after their hash is checked), and a refresh
// or an empty plan reads no blob at all. Requests are counted by a proxy
// in front of the real server.
func TestAccExport_downloadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	requireAcc(t)
	srv := testserver.StartS3(t)
	e := &env{t: t, s3: srv, bucket: srv.NewBucket(t), dir: filepath.Join(t.TempDir(), "src")}
	counter := srv.Count(t)
	e.endpoint = counter.Endpoint
	d1, d2 := e.publishTwo(siteFiles, siteV2)
	out := filepath.Join(t.TempDir(), "site")
	blobGets := func(want int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := counter.Calls(http.MethodGet, "/blobs/"); len(got) != want {
				return fmt.Errorf("%d blob downloads, want %d: %v", len(got), want, got)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				PreConfig: counter.Reset,
				Config:    e.exportConfig(d1, out),
				Check:     resource.ComposeAggregateTestCheckFunc(blobGets(len(siteFiles)), func(*terraform.State) error { return treeIs(t, out, d1) }),
			},
			{
				PreConfig: counter.Reset,
				Config:    e.exportConfig(d2, out),
				Check:     resource.ComposeAggregateTestCheckFunc(blobGets(2), func(*terraform.State) error { return treeIs(t, out, d2) }),
			},
			{
				PreConfig:        counter.Reset,
				Config:           e.exportConfig(d2, out),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            blobGets(0),
			},
		},
	})
}

// TestAccExport_refused: every path the export must not write is refused
// at plan with a diagnostic naming `path` (or `digest`, `format`), and
// nothing is written: an existing file or directory it did not write, a
// path inside the store or one holding it, an artifact that is not stored,
// a format the artifact cannot take, and one export inside another's
// directory — even an existing copy of exactly the content.
func TestAccExport_refused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	fileDigest := digest.Bytes([]byte("<h1>v1</h1>\n")).String()
	dir := t.TempDir()
	existing := filepath.Join(dir, "mine")
	must(t, os.Mkdir(existing, 0o755))
	must(t, os.WriteFile(filepath.Join(existing, "keep.txt"), []byte("mine"), 0o644))
	existingFile := filepath.Join(dir, "mine.zip")
	must(t, os.WriteFile(existingFile, []byte("mine"), 0o644))
	notStored := digest.Bytes([]byte("never stored")).String()
	nested := e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "outer" {
  digest = %[1]q
  path   = "%[2]s/www"
}
resource "immutable_export" "inner" {
  digest = %[1]q
  path   = "%[2]s/www/assets"
}
`, d1, dir)
	steps := []resource.TestStep{}
	for _, c := range []struct {
		cfg  string
		want string
	}{
		{e.exportConfig(d1, existing), `(?s)Refusing to write over an existing path.*was\s+not\s+written\s+by\s+this\s+export`},
		{e.exportConfig(d1, existingFile, `format = "zip"`), `(?s)Refusing to write over an existing path`},
		{e.exportConfig(d1, filepath.Join(e.store, "trees", "x")), `(?s)Refusing to write path.*inside the store`},
		{e.exportConfig(d1, filepath.Dir(e.store)), `(?s)Refusing to write path.*holds the store`},
		{e.exportConfig(fileDigest, filepath.Join(dir, "new.zip"), `format = "zip"`), `(?s)Format does not fit the artifact.*file artifact`},
		{e.exportConfig(d1, filepath.Join(dir, "new"), `format = "file"`), `(?s)Format does not fit the artifact.*directory artifact`},
		{e.exportConfig(d1, dir+"/new/"), `(?s)Refusing to write path`},
		{nested, `(?s)Refusing to write path.*another\s+immutable_export`},
	} {
		steps = append(steps, resource.TestStep{Config: c.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(c.want)})
	}
	// A digest not in the store may be stored by another resource in the
	// same apply: planned, and refused at apply if it is still missing.
	steps = append(steps, resource.TestStep{
		Config:      e.exportConfig(notStored, filepath.Join(dir, "new")),
		ExpectError: regexp.MustCompile(`(?s)Artifact not in the store`),
	})
	// Even exactly the content, copied there by hand: not the export's.
	copied := filepath.Join(dir, "copy")
	var ino uint64
	steps = append(steps, resource.TestStep{
		PreConfig: func() {
			must(t, exec.Command("cp", "-R", filepath.Join(e.dir, "v1"), copied).Run())
			ino = inodeOf(t, filepath.Join(copied, "index.html"))
		},
		Config:      e.exportConfig(d1, copied),
		ExpectError: regexp.MustCompile(`(?s)Refusing to write over an existing path`),
		Check: func(*terraform.State) error {
			if inodeOf(t, filepath.Join(copied, "index.html")) != ino {
				return errors.New("an existing copy was rewritten")
			}
			return nil
		},
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps:                    steps,
		CheckDestroy: func(*terraform.State) error {
			if b, err := os.ReadFile(filepath.Join(existing, "keep.txt")); err != nil || string(b) != "mine" {
				return fmt.Errorf("an existing directory was touched: %q %v", b, err)
			}
			if b, err := os.ReadFile(existingFile); err != nil || string(b) != "mine" {
				return fmt.Errorf("an existing file was touched: %q %v", b, err)
			}
			for _, p := range []string{"new", "new.zip", "www"} {
				if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s was written by a refused plan", p)
				}
			}
			return nil
		},
	})
}

// TestAccExport_changedBetweenPlanAndApply: a saved plan applied after the
// world moved. A target someone created meanwhile is not overwritten; a
// stored blob edited behind the store's back is not written out; a path
// change removes the old export and writes the new one.
func TestAccExport_changedBetweenPlanAndApply(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		d1, _ := e.publishTwo(siteFiles, siteV2)
		dir := t.TempDir()
		raced := filepath.Join(dir, "raced")
		corrupt := filepath.Join(dir, "corrupt")
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.exportConfig(d1, raced),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionCreate),
						betweenPlanAndApply(func() { must(t, os.WriteFile(raced, []byte("theirs"), 0o644)) }),
					}},
					ExpectError: regexp.MustCompile(`(?s)Refusing to write over an existing path`),
				},
				{
					Config: e.exportConfig(d1, corrupt),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						betweenPlanAndApply(func() {
							e.tamper(store.BlobKey(digest.Bytes([]byte("body{}\n"))), []byte("evil{}\n"))
						}),
					}},
					ExpectError: regexp.MustCompile(`(?s)Stored content is corrupt.*Nothing was written`),
				},
			},
			CheckDestroy: func(*terraform.State) error {
				if b, _ := os.ReadFile(raced); string(b) != "theirs" {
					return fmt.Errorf("a path created between plan and apply was overwritten: %q", b)
				}
				if _, err := os.Lstat(corrupt); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("a corrupt blob was written out: %v", err)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					return fmt.Errorf("leftovers beside the targets: %v", entries)
				}
				return nil
			},
		})
	})
}

// TestAccExport_pathChangeAndDestroy: moving the export replaces it (the
// old path is removed, the new one written); destroy removes what the
// export wrote and keeps what someone added, and never follows a symlink
// put in place of one of its directories.
func TestAccExport_pathChangeAndDestroy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	decoy := t.TempDir()
	must(t, os.WriteFile(filepath.Join(decoy, "site.css"), []byte("canary"), 0o644))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.exportConfig(d1, a)},
			{
				Config: e.exportConfig(d1, b),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: func(*terraform.State) error {
					if _, err := os.Lstat(a); !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("the old path is left: %v", err)
					}
					return treeIs(t, b, d1)
				},
			},
			{
				// The same target spelled differently is not a move.
				Config: e.exportConfig(d1, dir+"/./b"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraform.State) error { return treeIs(t, b, d1) },
			},
			{
				// Before destroy: a file of someone else's, and a written
				// directory swapped for a link to theirs.
				PreConfig: func() {
					must(t, os.WriteFile(filepath.Join(b, "theirs.txt"), []byte("x"), 0o644))
					must(t, os.RemoveAll(filepath.Join(b, "css")))
					must(t, os.Symlink(decoy, filepath.Join(b, "css")))
				},
				Config:  e.exportConfig(d1, dir+"/./b"),
				Destroy: true,
				Check: func(*terraform.State) error {
					if b, err := os.ReadFile(filepath.Join(decoy, "site.css")); err != nil || string(b) != "canary" {
						return fmt.Errorf("destroy followed a symlink out of the export: %q %v", b, err)
					}
					if _, err := os.Stat(filepath.Join(b, "theirs.txt")); err != nil {
						return fmt.Errorf("destroy removed a file it did not write: %v", err)
					}
					if _, err := os.Stat(filepath.Join(b, "index.html")); !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("destroy left a file it wrote: %v", err)
					}
					return nil
				},
			},
		},
	})
}

// driftWas checks the drift refresh recorded in the prior state.
func driftWas(addr, want string) plancheck.PlanCheck { return driftCheck{addr, want} }

type driftCheck struct{ addr, want string }

func (c driftCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address == c.addr {
			before, _ := rc.Change.Before.(map[string]any)
			if got, _ := before["drift"].(string); got != c.want {
				resp.Error = fmt.Errorf("%s: drift before the plan is %q, want %q", c.addr, got, c.want)
			}
			return
		}
	}
	resp.Error = fmt.Errorf("%s not in the plan", c.addr)
}

// TestAccExport_targetMovesUnderTheSamePath: the path string stays, but a
// symlinked parent now points elsewhere: the export is replaced (the old
// target removed), not updated with the old one orphaned.
func TestAccExport_targetMovesUnderTheSamePath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	dir := t.TempDir()
	r1, r2, current := filepath.Join(dir, "r1"), filepath.Join(dir, "r2"), filepath.Join(dir, "current")
	must(t, os.Mkdir(r1, 0o755))
	must(t, os.Mkdir(r2, 0o755))
	must(t, os.Symlink("r1", current))
	cfg := e.exportConfig(d1, filepath.Join(current, "site"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg, Check: func(*terraform.State) error { return treeIs(t, filepath.Join(r1, "site"), d1) }},
			{
				PreConfig: func() {
					must(t, os.Remove(current))
					must(t, os.Symlink("r2", current))
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: func(*terraform.State) error {
					if _, err := os.Lstat(filepath.Join(r1, "site")); !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("the old target is orphaned: %v", err)
					}
					return treeIs(t, filepath.Join(r2, "site"), d1)
				},
			},
		},
	})
}

// TestAccExport_destroyWithAParentMovedUnderASymlink: the directory
// above the export moved away and a symlink put in its place: the path
// now resolves to an existing path, which a plan refuses to write over.
// Destroy's refresh plans with the configuration too, and must not be
// blocked by that: destroy succeeds and removes nothing through the link.
func TestAccExport_destroyWithAParentMovedUnderASymlink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	dir := t.TempDir()
	parent, moved := filepath.Join(dir, "d1"), filepath.Join(dir, "d1real")
	cfg := e.exportConfig(d1, filepath.Join(parent, "www"))
	factories, diags := recordingProvider()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{
			{Config: cfg, Check: func(*terraform.State) error { return treeIs(t, filepath.Join(parent, "www"), d1) }},
			{
				// An apply plans an update, not a replacement (whose
				// destroy half would run first), and Update refuses
				// before it writes or removes anything.
				PreConfig: func() {
					must(t, os.Rename(parent, moved))
					must(t, os.Symlink("d1real", parent))
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
				}},
				ExpectError: regexp.MustCompile(`(?s)now resolves elsewhere.*Nothing was written or removed`),
			},
			{
				Config:  cfg,
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionDestroy),
				}},
				Check: func(*terraform.State) error {
					if err := treeIs(t, filepath.Join(moved, "www"), d1); err != nil {
						return fmt.Errorf("destroy removed something through the symlink: %w", err)
					}
					_, err := warningOf(diags(), "Export removed, some paths kept")
					return err
				},
			},
		},
	})
}

// TestAccExport_pathChangedToAnExistingPath: `path` changed in the
// configuration to a directory the export did not write is refused at
// plan, and the export at the old path is left as it is (not removed by
// the destroy half of a replacement that could not finish).
func TestAccExport_pathChangedToAnExistingPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	dir := t.TempDir()
	www, existing := filepath.Join(dir, "www"), filepath.Join(dir, "existing")
	must(t, os.Mkdir(existing, 0o755))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.exportConfig(d1, www)},
			{
				Config:      e.exportConfig(d1, existing),
				ExpectError: regexp.MustCompile(`(?s)Refusing to write over an existing path`),
				Check:       func(*terraform.State) error { return treeIs(t, www, d1) },
			},
			{
				Config:           e.exportConfig(d1, www),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            func(*terraform.State) error { return treeIs(t, www, d1) },
			},
		},
	})
}

// TestAccExport_storeGone: with the store moved away, an unchanged export
// still plans (nothing to read: what was written is known) and destroys —
// a zip without any listing, a directory by its own files on disk.
func TestAccExport_storeGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	dir := t.TempDir()
	cfg := e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "zip" {
  digest = %[1]q
  path   = "%[2]s/site.zip"
  format = "zip"
}
resource "immutable_export" "dir" {
  digest = %[1]q
  path   = "%[2]s/site"
}
`, d1, dir)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig:        func() { must(t, os.Rename(e.store, e.store+".away")) },
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			for _, p := range []string{"site.zip", "site"} {
				if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("destroy without the store left %s: %v", p, err)
				}
			}
			return nil
		},
	})
}

// TestAccExport_artifactOfTheSameApply: exporting an artifact the same
// configuration creates plans (its archive hash unknown until apply), and
// writes it once the artifact is stored; the next plan is empty.
func TestAccExport_artifactOfTheSameApply(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		out := filepath.Join(t.TempDir(), "site.zip")
		cfg := e.artifactConfig(e.dir) + fmt.Sprintf(`
resource "immutable_export" "site" {
  digest = immutable_artifact.site.digest
  path   = %q
  format = "zip"
}
`, out)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(exp, plancheck.ResourceActionCreate),
						plancheck.ExpectUnknownValue(exp, tfjsonpath.New("sha256")),
					}},
					Check: resource.TestCheckResourceAttrWith(exp, "sha256", func(v string) error {
						b, err := os.ReadFile(out)
						if err != nil {
							return err
						}
						if got := digest.Bytes(b).Hex(); got != v {
							return fmt.Errorf("the zip hashes to %s, state says %s", got, v)
						}
						return nil
					}),
				},
				{
					Config:           cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})
}

// applyDiagnostics runs the provider in this process, like protoV6, and
// records the diagnostics it returns from every apply (a destroy's
// included): what tofu shows the user, which plugin-testing does not pass
// on to a test.
type applyDiagnostics struct {
	tfprotov6.ProviderServer
	mu    *sync.Mutex
	diags *[]*tfprotov6.Diagnostic
}

func (a applyDiagnostics) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	resp, err := a.ProviderServer.ApplyResourceChange(ctx, req)
	if resp != nil {
		a.mu.Lock()
		*a.diags = append(*a.diags, resp.Diagnostics...)
		a.mu.Unlock()
	}
	return resp, err
}

// recordingProvider returns provider factories for a TestCase and a
// function giving the apply diagnostics recorded so far.
func recordingProvider() (map[string]func() (tfprotov6.ProviderServer, error), func() []*tfprotov6.Diagnostic) {
	rec := applyDiagnostics{mu: &sync.Mutex{}, diags: &[]*tfprotov6.Diagnostic{}}
	serve := providerserver.NewProtocol6WithError(New("test")())
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"immutable": func() (tfprotov6.ProviderServer, error) {
			s, err := serve()
			if err != nil {
				return nil, err
			}
			r := rec
			r.ProviderServer = s
			return r, nil
		},
	}
	return factories, func() []*tfprotov6.Diagnostic {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.Clone(*rec.diags)
	}
}

// warningOf returns the detail of the one warning with this summary.
func warningOf(diags []*tfprotov6.Diagnostic, summary string) (string, error) {
	var found []string
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityWarning && d.Summary == summary {
			found = append(found, d.Detail)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want one warning %q, got %d in %v", summary, len(found), diags)
	}
	return found[0], nil
}

// filesHold checks the files under dir hold these bytes.
func filesHold(dir string, want map[string]string) error {
	for name, body := range want {
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(b) != body {
			return fmt.Errorf("%s holds %q (%v), want %q", name, b, err, body)
		}
	}
	return nil
}

// TestAccExport_destroyKeepsFilesTheUserMadeAgain (issue 19, item 2): an
// export to www, then `rm -rf www` and www/index.html and
// www/css/site.css made again with other bytes. The plan's drift says
// they changed; destroy leaves them with their bytes, and its warning
// names them and the directories made again.
func TestAccExport_destroyKeepsFilesTheUserMadeAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	out := filepath.Join(t.TempDir(), "www")
	mine := map[string]string{"index.html": "<h1>mine</h1>\n", "css/site.css": "body{color:red}\n"}
	factories, diags := recordingProvider()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{
			{
				Config: e.exportConfig(d1, out),
				Check:  func(*terraform.State) error { return treeIs(t, out, d1) },
			},
			{
				PreConfig: func() {
					must(t, os.RemoveAll(out))
					for name, body := range mine {
						must(t, os.MkdirAll(filepath.Dir(filepath.Join(out, name)), 0o755))
						must(t, os.WriteFile(filepath.Join(out, name), []byte(body), 0o644))
					}
				},
				Config:  e.exportConfig(d1, out),
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionDestroy),
					driftWas(exp, "bin/deploy.sh missing, css/site.css changed, index.html changed"),
				}},
				Check: func(*terraform.State) error {
					if err := filesHold(out, mine); err != nil {
						return fmt.Errorf("destroy did not keep the user's files: %w", err)
					}
					detail, err := warningOf(diags(), "Export removed, some paths kept")
					if err != nil {
						return err
					}
					for _, want := range []string{
						"and kept 4 path(s):\n",
						"\n- changed since the export wrote it: css/site.css, index.html\n",
						"\n- a directory made again since the export wrote it: " + out + ", css/\n",
					} {
						if !strings.Contains(detail, want) {
							return fmt.Errorf("the warning does not say %q:\n%s", want, detail)
						}
					}
					return nil
				},
			},
		},
	})
}

// TestAccExport_destroyRemovesOnlyWhatIsStillWritten: destroy of an
// export in which one file was put back with the same bytes (removed: it
// is byte for byte what the export wrote), one replaced by a link to a
// file outside (kept, not followed), a directory made again, and a file
// added by someone (kept): the warning names each kept path and why.
func TestAccExport_destroyRemovesOnlyWhatIsStillWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(map[string]string{
		"index.html": "<h1>v1</h1>\n", "css/site.css": "body{}\n", "img/logo.svg": "<svg/>\n", "about.html": "about\n",
	}, siteV2)
	out := filepath.Join(t.TempDir(), "www")
	outside := filepath.Join(t.TempDir(), "secret.css")
	factories, diags := recordingProvider()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{
			{
				Config: e.exportConfig(d1, out),
				Check:  func(*terraform.State) error { return treeIs(t, out, d1) },
			},
			{
				PreConfig: func() {
					in := func(name string) string { return filepath.Join(out, filepath.FromSlash(name)) }
					must(t, os.Remove(in("index.html")))
					must(t, os.WriteFile(in("index.html"), []byte("<h1>v1</h1>\n"), 0o644))
					must(t, os.WriteFile(outside, []byte("body{}\n"), 0o644))
					must(t, os.Remove(in("css/site.css")))
					must(t, os.Symlink(outside, in("css/site.css")))
					must(t, os.RemoveAll(in("img")))
					must(t, os.Mkdir(in("img"), 0o755))
					must(t, os.WriteFile(in("img/logo.svg"), []byte("<svg/>\n"), 0o644))
					must(t, os.WriteFile(in("notes.txt"), []byte("mine"), 0o644))
				},
				Config:  e.exportConfig(d1, out),
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionDestroy),
				}},
				Check: func(*terraform.State) error {
					if err := filesHold(out, map[string]string{"notes.txt": "mine"}); err != nil {
						return err
					}
					if err := filesHold(filepath.Dir(outside), map[string]string{"secret.css": "body{}\n"}); err != nil {
						return fmt.Errorf("destroy followed a link out of the export: %w", err)
					}
					if l, err := os.Readlink(filepath.Join(out, "css", "site.css")); err != nil || l != outside {
						return fmt.Errorf("the user's link css/site.css -> %q (%v)", l, err)
					}
					for _, gone := range []string{"index.html", "about.html", "img/logo.svg"} {
						if _, err := os.Lstat(filepath.Join(out, gone)); !errors.Is(err, fs.ErrNotExist) {
							return fmt.Errorf("%s, byte for byte what the export wrote, is left: %v", gone, err)
						}
					}
					detail, err := warningOf(diags(), "Export removed, some paths kept")
					if err != nil {
						return err
					}
					want := "and kept 3 path(s):\n" +
						"- now a symbolic link, not the file the export wrote: css/site.css\n" +
						"- a directory made again since the export wrote it: img/\n" +
						"- not written by the export: notes.txt\n"
					if !strings.Contains(detail, want) {
						return fmt.Errorf("the warning does not say\n%s\nit says\n%s", want, detail)
					}
					return nil
				},
			},
		},
	})
}

// The destroy warning stays short however much is kept: five paths per
// reason, six reasons, and counts for the rest.
func TestExportKeptDetailBounded(t *testing.T) {
	var kept []export.Kept
	for i := range 8 {
		for j := range 7 {
			kept = append(kept, export.Kept{Path: fmt.Sprintf("p%d-%d", i, j), Why: fmt.Sprintf("why %d", i)})
		}
	}
	got := keptDetail("/srv/www", kept)
	for _, want := range []string{
		"and kept 56 path(s):\n",
		"\n- why 0: p0-0, p0-1, p0-2, p0-3, p0-4 and 2 more\n",
		"\n- why 5: p5-0, p5-1, p5-2, p5-3, p5-4 and 2 more\n",
		"\n- and 14 more, for other reasons\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the warning does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "why 6") || strings.Count(got, "\n") != 8 {
		t.Errorf("the warning is not bounded:\n%s", got)
	}
	if got := keptDetail("/srv/site.zip", []export.Kept{{Path: "/srv/site.zip", Why: "changed since the export wrote it"}}); got !=
		"Left /srv/site.zip in place: changed since the export wrote it. Nothing was deleted; remove it yourself if it may go." {
		t.Errorf("one kept target: %s", got)
	}
}
