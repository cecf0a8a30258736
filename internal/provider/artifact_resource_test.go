package provider

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

const site = "immutable_artifact.site"

func (e *env) artifactConfig(source string, extra ...string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source = %q
  %s
}
`, source, strings.Join(extra, "\n  "))
}

var siteFiles = map[string]string{
	"index.html":     "<h1>v1</h1>\n",
	"css/site.css":   "body{}\n",
	"bin/deploy.sh*": "#!/bin/sh\n",
}

// TestAccArtifact_lifecycle: create, no-op when unchanged (after touch,
// chmod 644→664 and a fresh copy), replace on change, and an in-place
// update when only the source path moves.
func TestAccArtifact_lifecycle(t *testing.T) {
	t.Parallel()
	forEveryStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		v1 := digestOf(t, e.dir)
		moved := filepath.Join(filepath.Dir(e.dir), "moved")
		sameDigest := statecheck.CompareValue(compare.ValuesSame())
		differs := statecheck.CompareValue(compare.ValuesDiffer())

		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.artifactConfig(e.dir),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionCreate),
						// The digest is known during plan.
						plancheck.ExpectKnownValue(site, tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
						plancheck.ExpectKnownValue(site, tfjsonpath.New("files").AtMapKey("index.html"),
							knownvalue.StringExact("file "+digest.Bytes([]byte("<h1>v1</h1>\n")).String())),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(site, tfjsonpath.New("id"), knownvalue.StringExact(v1)),
						statecheck.ExpectKnownValue(site, tfjsonpath.New("file_count"), knownvalue.Int64Exact(3)),
						statecheck.ExpectKnownValue(site, tfjsonpath.New("size"), knownvalue.Int64Exact(int64(len("<h1>v1</h1>\nbody{}\n#!/bin/sh\n")))),
						statecheck.ExpectKnownValue(site, tfjsonpath.New("files").AtMapKey("bin/deploy.sh"),
							knownvalue.StringRegexp(regexp.MustCompile(`^exec sha256:`))),
						sameDigest.AddStateValue(site, tfjsonpath.New("digest")),
						differs.AddStateValue(site, tfjsonpath.New("digest")),
					},
					Check: func(*terraformState) error {
						// Stored: the listing and each blob.
						if k, err := e.backend().Lookup(context.Background(), mustParse(v1)); k != store.Tree || err != nil {
							return fmt.Errorf("tree not stored: %v %v", k, err)
						}
						return nil
					},
				},
				{
					// touch, chmod 644→664, umask-like changes: nothing to do.
					PreConfig: func() {
						later := time.Now().Add(time.Hour)
						must(t, os.Chtimes(filepath.Join(e.dir, "index.html"), later, later))
						must(t, os.Chmod(filepath.Join(e.dir, "css/site.css"), 0o664))
					},
					Config: e.artifactConfig(e.dir),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
					}},
				},
				{
					// The same content elsewhere: updated in place, no new artifact.
					PreConfig: func() { copyTree(t, e.dir, moved) },
					Config:    e.artifactConfig(moved),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(site, tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
					}},
					ConfigStateChecks: []statecheck.StateCheck{sameDigest.AddStateValue(site, tfjsonpath.New("digest"))},
				},
				{
					// A changed file: replaced, with the old → new digest in the plan.
					PreConfig: func() {
						must(t, os.WriteFile(filepath.Join(moved, "index.html"), []byte("<h1>v2</h1>\n"), 0o644))
					},
					Config: e.artifactConfig(moved),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionDestroyBeforeCreate),
						plancheck.ExpectKnownValue(site, tfjsonpath.New("files").AtMapKey("index.html"),
							knownvalue.StringExact("file "+digest.Bytes([]byte("<h1>v2</h1>\n")).String())),
					}},
					ConfigStateChecks: []statecheck.StateCheck{differs.AddStateValue(site, tfjsonpath.New("digest"))},
				},
				{
					// An exec bit is content too.
					PreConfig: func() { must(t, os.Chmod(filepath.Join(moved, "index.html"), 0o755)) },
					Config:    e.artifactConfig(moved),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionReplace),
					}},
				},
			},
		})
	})
}

// must fails the test on a setup step's error: a step that did not happen
// would make the assertion after it meaningless.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustParse(s string) digest.Sum {
	sum, err := digest.Parse(s)
	if err != nil {
		panic(err)
	}
	return sum
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700) // another umask
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()&0o700); err != nil {
			return err
		}
		return os.Chmod(dst, fi.Mode().Perm()&0o700)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAccArtifact_contentAndFile: a file's digest is filesha256(); inline
// content's is sha256(); both are stored as one blob.
func TestAccArtifact_contentAndFile(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(map[string]string{"lambda.js": "exports.handler = 1\n"})
		file := filepath.Join(e.dir, "lambda.js")
		want := digest.Bytes([]byte("exports.handler = 1\n")).String()
		bin := []byte{0, 1, 2, 255}
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "file" {
  source = %q
}
resource "immutable_artifact" "inline" {
  content = "exports.handler = 1\n"
}
resource "immutable_artifact" "secret" {
  sensitive_content = "hunter2"
}
resource "immutable_artifact" "bin" {
  content_base64 = %q
}
output "filesha256" { value = "sha256:${filesha256(%q)}" }
output "sha256"     { value = "sha256:${sha256("exports.handler = 1\n")}" }
`, file, base64.StdEncoding.EncodeToString(bin), file),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_artifact.file", tfjsonpath.New("digest"), knownvalue.StringExact(want)),
					statecheck.ExpectKnownOutputValue("filesha256", knownvalue.StringExact(want)),
					statecheck.ExpectKnownOutputValue("sha256", knownvalue.StringExact(want)),
					statecheck.ExpectKnownValue("immutable_artifact.inline", tfjsonpath.New("digest"), knownvalue.StringExact(want)),
					statecheck.ExpectKnownValue("immutable_artifact.file", tfjsonpath.New("files"), knownvalue.Null()),
					statecheck.ExpectKnownValue("immutable_artifact.file", tfjsonpath.New("file_count"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("immutable_artifact.secret", tfjsonpath.New("digest"), knownvalue.StringExact(digest.Bytes([]byte("hunter2")).String())),
					statecheck.ExpectKnownValue("immutable_artifact.bin", tfjsonpath.New("digest"), knownvalue.StringExact(digest.Bytes(bin).String())),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectSensitiveValue("immutable_artifact.secret", tfjsonpath.New("sensitive_content")),
				}},
				Check: func(*terraformState) error {
					s := e.backend()
					s.Stats.BlobsSkipped.Store(0)
					// file and inline content share one blob.
					if ok, _ := s.HasBlob(context.Background(), mustParse(want)); !ok {
						return fmt.Errorf("blob %s not stored", want)
					}
					keys, _ := s.Backend().List(context.Background(), "blobs/")
					if len(keys) != 3 {
						return fmt.Errorf("want 3 blobs (one shared), got %v", keys)
					}
					return nil
				},
			}},
		})
	})
}

// TestAccArtifact_refreshAfterStoreLoss: a listing gone from the store
// drops the artifact from state, and the next plan creates it again.
func TestAccArtifact_refreshAfterStoreLoss(t *testing.T) {
	t.Parallel()
	forEveryStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		v1 := digestOf(t, e.dir)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: e.artifactConfig(e.dir)},
				{
					PreConfig: func() {
						e.deleteKeys("trees/")
					},
					Config: e.artifactConfig(e.dir),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionCreate),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(site, tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
					},
				},
			},
		})
	})
}

// TestAccArtifact_verifyOnRefresh: with verify_on_refresh, a tampered blob
// fails refresh with an error naming the file.
func TestAccArtifact_verifyOnRefresh(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		cfg := e.providerBlock("verify_on_refresh = true") + fmt.Sprintf("resource \"immutable_artifact\" \"site\" {\n  source = %q\n}\n", e.dir)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: cfg},
				{
					PreConfig: func() {
						e.tamper(store.BlobKey(digest.Bytes([]byte("body{}\n"))), []byte("body{color:red}\n"))
					},
					Config:      cfg,
					ExpectError: regexp.MustCompile(`(?s)Stored artifact is corrupt.*css/site\.css`),
				},
			},
		})
	})
}

// TestAccArtifact_import imports by digest; with the same content in
// config the next plan is an in-place update, never a replacement.
func TestAccArtifact_import(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(siteFiles)
		v1 := digestOf(t, e.dir)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: e.artifactConfig(e.dir)},
				{
					ResourceName:            site,
					ImportState:             true,
					ImportStateId:           v1,
					ImportStateVerify:       true,
					ImportStateVerifyIgnore: []string{"source"},
				},
				{
					ResourceName:  site,
					ImportState:   true,
					ImportStateId: "sha256:nothex",
					ExpectError:   regexp.MustCompile(`Import an artifact by its digest`),
				},
				{
					ResourceName:  site,
					ImportState:   true,
					ImportStateId: digest.Bytes([]byte("never stored")).String(),
					ExpectError:   regexp.MustCompile(`Cannot import non-existent remote object`),
				},
			},
		})
	})
}

// TestAccArtifact_importThenPlan: after `import`, a config with the same
// content updates in place.
func TestAccArtifact_importThenPlan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	v1 := digestOf(t, e.dir)
	// Store the content first, under another resource address.
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.providerBlock() + fmt.Sprintf("resource \"immutable_artifact\" \"other\" {\n  source = %q\n}\n", e.dir)},
			{
				Config: e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "other" {
  source = %q
}
import {
  to = immutable_artifact.site
  id = %q
}
resource "immutable_artifact" "site" {
  source = %q
}
`, e.dir, v1, e.dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(site, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(site, tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
				}},
			},
		},
	})
}

// TestAccArtifact_unknownSource: a source only known at apply plans an
// unknown digest instead of failing.
func TestAccArtifact_unknownSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + fmt.Sprintf(`
resource "terraform_data" "build" {
  input = %q
}
resource "immutable_artifact" "site" {
  source = terraform_data.build.output
}
`, e.dir),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectUnknownValue(site, tfjsonpath.New("digest")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(site, tfjsonpath.New("digest"), knownvalue.StringExact(digestOf(t, e.dir))),
			},
		}},
	})
}

// TestAccArtifact_destroyAfterSourceDeleted: destroy plans normally first;
// a missing source must not block it.
func TestAccArtifact_destroyAfterSourceDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.artifactConfig(e.dir)},
			{
				PreConfig: func() { must(t, os.RemoveAll(e.dir)) },
				Config:    e.artifactConfig(e.dir),
				Destroy:   true,
			},
		},
	})
}

// TestAccArtifact_missingSourceAfterCreateFailsApply: outside destroy, a
// source that vanished fails the apply with a clear error.
func TestAccArtifact_missingSourceAfterCreateFailsApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.artifactConfig(e.dir)},
			{
				PreConfig:   func() { must(t, os.RemoveAll(e.dir)) },
				Config:      e.artifactConfig(e.dir),
				ExpectError: regexp.MustCompile(`(?s)Source not found.*does not exist`),
			},
			{
				PreConfig: func() { e.write(siteFiles) },
				Config:    e.artifactConfig(e.dir),
			},
		},
	})
}

// TestAccArtifact_archive: a reproducible zip with Lambda's hash, a local
// copy re-written when missing, and the archive reused, never rebuilt.
func TestAccArtifact_archive(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(map[string]string{"index.js": "exports.handler = async () => 'ok'\n", "lib/util.js": "module.exports = 1\n"})
		out := filepath.Join(filepath.Dir(e.dir), "lambda.zip")
		cfg := e.artifactConfig(e.dir, `archive = "zip"`, fmt.Sprintf("output_path = %q", out))
		fileHash := func() (string, string) {
			b, err := os.ReadFile(out)
			if err != nil {
				return "", ""
			}
			s := sha256.Sum256(b)
			return hex.EncodeToString(s[:]), base64.StdEncoding.EncodeToString(s[:])
		}
		var firstZip string
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectUnknownValue(site, tfjsonpath.New("archive_sha256")),
					}},
					Check: func(s *terraformState) error {
						hexSum, b64 := fileHash()
						attrs := s.RootModule().Resources[site].Primary.Attributes
						if hexSum == "" || attrs["archive_sha256"] != hexSum || attrs["archive_base64sha256"] != b64 {
							return fmt.Errorf("output %s has sha %s/%s; state says %s/%s", out, hexSum, b64, attrs["archive_sha256"], attrs["archive_base64sha256"])
						}
						firstZip = hexSum
						return nil
					},
				},
				{
					// A fresh CI machine: the copy is gone, the artifact is not.
					PreConfig: func() { must(t, os.Remove(out)) },
					Config:    cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionUpdate),
					}},
					Check: func(*terraformState) error {
						if h, _ := fileHash(); h != firstZip {
							return fmt.Errorf("re-written copy has sha %s, want %s", h, firstZip)
						}
						return nil
					},
				},
				{
					// Another artifact of the same content: the archive is already
					// stored, so its hash is known at plan.
					Config: cfg + fmt.Sprintf(`
resource "immutable_artifact" "again" {
  source  = %q
  archive = "zip"
}`, e.dir),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue("immutable_artifact.again", tfjsonpath.New("archive_sha256"), knownvalue.StringFunc(func(v string) error {
							if v != firstZip {
								return fmt.Errorf("archive_sha256 %s, want %s", v, firstZip)
							}
							return nil
						})),
					}},
				},
				{
					// Switching the format replaces the artifact.
					Config: e.artifactConfig(e.dir, `archive = "tar.gz"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionReplace),
					}},
				},
			},
		})
	})
}

// TestAccArtifact_badInput: each mistake gets a diagnostic on the right
// attribute, and nothing is written to the store.
func TestAccArtifact_badInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"ok.txt": "ok"})
	file := filepath.Join(e.dir, "ok.txt")
	fifoDir := filepath.Join(filepath.Dir(e.dir), "fifo")
	must(t, os.MkdirAll(fifoDir, 0o755))
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	newlineDir := filepath.Join(filepath.Dir(e.dir), "newline")
	must(t, os.MkdirAll(newlineDir, 0o755))
	must(t, os.WriteFile(filepath.Join(newlineDir, "a\nb"), nil, 0o644))
	badUTF8Dir := filepath.Join(filepath.Dir(e.dir), "badutf8")
	must(t, os.MkdirAll(badUTF8Dir, 0o755))
	must(t, os.WriteFile(filepath.Join(badUTF8Dir, "bad\xff"), nil, 0o644))
	devNode := filepath.Join(filepath.Dir(e.dir), "null") // a private device node, never /dev/null
	if err := syscall.Mknod(devNode, syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(filepath.Dir(e.dir), "regular")
	must(t, os.WriteFile(regular, nil, 0o644))

	// Each case gets its own empty store; configs name it through e.store.
	res := func(body string) func() string {
		return func() string { return e.providerBlock() + "resource \"immutable_artifact\" \"x\" {\n" + body + "\n}\n" }
	}
	raw := func(s string) func() string { return func() string { return s } }
	for name, c := range map[string]struct {
		config func() string
		err    string
	}{
		"missing path":         {res(fmt.Sprintf("source = %q", filepath.Join(e.dir, "nope"))), `(?s)Source not found.*does not exist.*path\.module`},
		"path under a file":    {res(fmt.Sprintf("source = %q", filepath.Join(file, "x"))), `(?s)Source not found.*a file, not a directory`},
		"unreadable file":      {res(`source = "/proc/self/mem"`), `(?s)Cannot read source.*input/output error`},
		"source and content":   {res(fmt.Sprintf("source = %q\ncontent = \"x\"", file)), `(?s)Invalid Attribute Combination.*source`},
		"neither":              {res(`excludes = []`), `(?s)Exactly one of these attributes must be configured:\s+\[source,content`},
		"invalid glob":         {res(fmt.Sprintf("source = %q\nexcludes = [\"[oops\"]", e.dir)), `(?s)Invalid glob.*not a valid glob`},
		"excludes on a file":   {res(fmt.Sprintf("source = %q\nexcludes = [\"*.map\"]", file)), `(?s)Excludes need a directory source.*is a file`},
		"newline in a name":    {res(fmt.Sprintf("source = %q", newlineDir)), `(?s)Unsupported file name.*contains a newline`},
		"invalid UTF-8 name":   {res(fmt.Sprintf("source = %q", badUTF8Dir)), `(?s)Unsupported file name.*not valid UTF-8`},
		"FIFO in the tree":     {res(fmt.Sprintf("source = %q", fifoDir)), `(?s)Unsupported file type.*pipe" is a named\s+pipe`},
		"FIFO as the source":   {res(fmt.Sprintf("source = %q", filepath.Join(fifoDir, "pipe"))), `(?s)Source is not a regular file.*is a named\s+pipe`},
		"device as the source": {res(fmt.Sprintf("source = %q", devNode)), `(?s)Source is not a regular file.*is a\s+character\s+device`},
		"empty exclude":        {res(fmt.Sprintf("source = %q\nexcludes = [\"\"]", e.dir)), `(?s)Invalid glob.*empty and matches\s+nothing`},
		"exclude outside":      {res(fmt.Sprintf("source = %q\nexcludes = [\"../x\"]", e.dir)), `(?s)Invalid glob.*can\s+never\s+match`},
		"bad base64":           {res(`content_base64 = "not base64!"`), `(?s)Invalid base64`},
		"archive of content":   {res("content = \"x\"\narchive = \"zip\""), `(?s)Invalid Attribute Combination`},
		"unknown format":       {res(fmt.Sprintf("source = %q\narchive = \"rar\"", e.dir)), `(?s)Invalid Attribute Value Match.*zip`},
		"output without zip":   {res(fmt.Sprintf("source = %q\noutput_path = \"x.zip\"", e.dir)), `(?s)Invalid Attribute Combination`},
		"unknown store":        {raw(`provider "immutable" { store = "ftp://host/x" }` + "\nresource \"immutable_artifact\" \"x\" {\n content = \"x\"\n}\n"), `(?s)Invalid store URL.*unknown scheme`},
		"store not a URL":      {raw(`provider "immutable" { store = "/tmp/x" }` + "\nresource \"immutable_artifact\" \"x\" {\n content = \"x\"\n}\n"), `(?s)Invalid store URL.*file://PATH`},
		"unwritable store":     {raw(fmt.Sprintf("provider \"immutable\" { store = %q }\nresource \"immutable_artifact\" \"x\" {\n content = \"x\"\n}\n", "file://"+filepath.Join(regular, "store"))), `(?s)Cannot write to the store.*not a directory.*store`},
		"unwritable out path":  {res(fmt.Sprintf("source = %q\narchive = \"zip\"\noutput_path = %q", e.dir, filepath.Join(regular, "x.zip"))), `(?s)Refusing to write output_path.*cannot be created.*is a file`},
	} {
		t.Run(name, func(t *testing.T) {
			e.store = filepath.Join(t.TempDir(), "store")
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps:                    []resource.TestStep{{Config: c.config(), ExpectError: regexp.MustCompile(c.err)}},
			})
			if keys, _ := e.backend().Backend().List(context.Background(), ""); len(keys) != 0 {
				t.Fatalf("bad input wrote to the store: %v", keys)
			}
		})
	}
}

// TestArtifactApplyRefusesContentChangedSincePlan: the provider's own
// check in Create, for a change after core's final plan.
func TestArtifactApplyRefusesContentChangedSincePlan(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("planned"), 0o644))
	planned := digestOf(t, dir)
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed"), 0o644))

	st := (&env{t: t, store: filepath.Join(t.TempDir(), "store")}).backend()
	r := &ArtifactResource{data: newProviderData(st, nil)}
	m := &artifactModel{
		Source: types.StringValue(dir), Excludes: types.ListNull(types.StringType),
		Archive: types.StringNull(), Digest: types.StringValue(planned),
	}
	var diags diagnostics
	r.apply(context.Background(), m, &diags)
	if !diags.HasError() || !strings.Contains(fmt.Sprint(diags), "Content changed since plan") {
		t.Fatalf("want the provider's own error, got %v", diags)
	}
	if k, _ := st.Lookup(context.Background(), mustParse(planned)); k != store.Missing {
		t.Fatal("something was recorded under the planned digest")
	}
}

// TestArtifactLargeTreeChangeWarning: a tree too large for `files` names
// its changed paths in a plan warning, against the prior listing.
func TestArtifactLargeTreeChangeWarning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string]string{}
	for i := range FilesLimit + 1 {
		files[fmt.Sprintf("d%02d/f%04d.txt", i%10, i)] = fmt.Sprint(i)
	}
	(&env{t: t, dir: dir}).write(files)
	st := (&env{t: t, store: filepath.Join(t.TempDir(), "store")}).backend()
	old, err := st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "d03/f0003.txt"), []byte("changed"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new"), 0o644))
	must(t, os.Remove(filepath.Join(dir, "d05/f0005.txt")))
	r := &ArtifactResource{data: newProviderData(st, nil)}
	m := &artifactModel{Source: types.StringValue(dir), Excludes: types.ListNull(types.StringType)}
	c, diags := r.hashContent(ctx, m)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if !filesValue(c.Tree).IsNull() {
		t.Fatal("files is kept for a tree over the limit")
	}
	prior := &artifactModel{Digest: types.StringValue(old.Digest().String()), Files: types.MapNull(types.StringType)}
	r.warnLargeChange(ctx, prior, c, &diags)
	if len(diags) != 1 || diags.WarningsCount() != 1 {
		t.Fatalf("want one warning, got %v", diags)
	}
	detail := diags[0].Detail()
	for _, want := range []string{"3 of 1001 paths differ", "~ d03/f0003.txt", "- d05/f0005.txt", "+ new.txt"} {
		if !strings.Contains(detail, want) {
			t.Errorf("warning lacks %q:\n%s", want, detail)
		}
	}
}

// TestAccArtifact_fileArchive: a file source archives as one entry named
// after the file.
func TestAccArtifact_fileArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"handler.py*": "def handler(e, c): return 1\n"})
	out := filepath.Join(filepath.Dir(e.dir), "out", "handler.zip")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.artifactConfig(filepath.Join(e.dir, "handler.py"), `archive = "zip"`, fmt.Sprintf("output_path = %q", out)),
			Check: func(*terraformState) error {
				zr, err := zip.OpenReader(out)
				if err != nil {
					return err
				}
				defer func() { _ = zr.Close() }() // read-only: nothing to lose
				if len(zr.File) != 1 || zr.File[0].Name != "handler.py" || zr.File[0].Mode().Perm() != 0o755 {
					return fmt.Errorf("zip holds %+v", zr.File)
				}
				return nil
			},
		}},
	})
}
