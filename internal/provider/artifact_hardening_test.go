package provider

import (
	"archive/zip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// betweenPlanAndApply runs f after the plan was saved and checked and
// before that saved plan is applied: the world changing under a reviewed
// plan.
type betweenPlanAndApply func()

func (f betweenPlanAndApply) CheckPlan(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
	f()
}

// zipEntries lists a zip's entries as "name mode".
func zipEntries(t *testing.T, p string) []string {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zr.Close() }() // read-only: nothing to lose
	var out []string
	for _, f := range zr.File {
		out = append(out, fmt.Sprintf("%s %o", f.Name, f.Mode().Perm()))
	}
	return out
}

// TestAccArtifact_fileArchiveFollowsNameAndMode: a file source's archive is
// identified by its listing (the entry's name and exec bit too), not only
// by the content digest. Renaming the file updates the artifact in place
// with a new archive (it used to carry the old archive hash and fail every
// apply with "Archive differs from plan"); chmod +x, which the digest
// ignores, makes a new archive too (it used to plan nothing, leaving a
// stale archive).
func TestAccArtifact_fileArchiveFollowsNameAndMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"a.txt": "same content\n"})
	out := filepath.Join(filepath.Dir(e.dir), "out", "f.zip")
	a, b := filepath.Join(e.dir, "a.txt"), filepath.Join(e.dir, "b.txt")
	cfg := func(src string) string {
		return e.artifactConfig(src, `archive = "zip"`, fmt.Sprintf("output_path = %q", out))
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg(a),
				Check: func(*terraformState) error {
					if got := zipEntries(t, out); len(got) != 1 || got[0] != "a.txt 644" {
						return fmt.Errorf("zip holds %v", got)
					}
					return nil
				},
			},
			{
				PreConfig: func() { must(t, os.Rename(a, b)) },
				Config:    cfg(b),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(site, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(site, tfjsonpath.New("archive_sha256")),
				}},
				Check: func(*terraformState) error {
					if got := zipEntries(t, out); len(got) != 1 || got[0] != "b.txt 644" {
						return fmt.Errorf("after the rename the zip holds %v", got)
					}
					return nil
				},
			},
			{
				PreConfig: func() { must(t, os.Chmod(b, 0o755)) },
				Config:    cfg(b),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(site, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(site, tfjsonpath.New("archive_sha256")),
				}},
				Check: func(*terraformState) error {
					if got := zipEntries(t, out); len(got) != 1 || got[0] != "b.txt 755" {
						return fmt.Errorf("after chmod +x the zip holds %v", got)
					}
					return nil
				},
			},
			{
				// Unchanged: nothing to do, the archive hash reused from state.
				Config:           cfg(b),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// TestAccArtifact_missingSourcePlansReplace: a deleted source plans a
// replacement (not an update), so a saved plan still applies when the
// source comes back with other content before the apply.
func TestAccArtifact_missingSourcePlansReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	v2 := map[string]string{"index.html": "<h1>restored, other</h1>\n"}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.artifactConfig(e.dir)},
			{
				PreConfig: func() { must(t, os.RemoveAll(e.dir)) },
				Config:    e.artifactConfig(e.dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(site, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectUnknownValue(site, tfjsonpath.New("digest")),
					betweenPlanAndApply(func() { e.write(v2) }),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(site, tfjsonpath.New("file_count"), knownvalue.Int64Exact(1)),
				},
			},
		},
	})
}

// TestAccArtifact_outputPathRefused: output_path never overwrites what the
// provider did not create or must not touch — a stored blob, the source,
// a named pipe, a device, a socket, a directory — and nothing is written:
// the store stays empty and the target as it was.
func TestAccArtifact_outputPathRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"index.js": "x\n", "build/.keep": ""})
	file := filepath.Join(e.dir, "index.js")
	other := t.TempDir()
	fifo := filepath.Join(other, "pipe.zip")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(other, "null.zip") // a private device node, never the real /dev/null
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(other, "sock.zip")
	if fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0); err != nil {
		t.Fatal(err)
	} else if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	} else {
		defer func() { _ = syscall.Close(fd) }() // only there to be a socket; nothing is sent
	}
	dir := filepath.Join(other, "dir.zip")
	must(t, os.Mkdir(dir, 0o755))

	for name, c := range map[string]struct {
		source, out func() string
		err         string
	}{
		"a blob in the store": {func() string { return e.dir }, func() string {
			// The store holds this blob once anything of index.js was stored.
			return filepath.Join(e.store, filepath.FromSlash(store.BlobKey(digest.Bytes([]byte("x\n")))))
		}, `inside the store`},
		"through a link and ..": {func() string { return e.dir }, func() string {
			// link -> <store>/blobs/sha256; for the kernel link/.. is <store>/blobs,
			// though the text cancels out.
			blobs := filepath.Join(e.store, "blobs", "sha256")
			link := filepath.Join(t.TempDir(), "link")
			must(t, os.Symlink(blobs, link))
			return link + "/../sha256/" + store.BlobKey(digest.Bytes([]byte("x\n")))[len("blobs/sha256/"):]
		}, `inside the store`},
		"another store": {func() string { return e.dir }, func() string {
			// A store this resource is not configured with (another provider
			// block's): recognised by its layout.
			other := filepath.Join(filepath.Dir(e.dir), "other-store")
			must(t, os.MkdirAll(filepath.Join(other, "blobs", "sha256"), 0o755))
			return filepath.Join(other, "archives", "x.zip")
		}, `inside the content-addressed store`},
		"the store itself":   {func() string { return e.dir }, func() string { return e.store }, `is the store`},
		"the source file":    {func() string { return file }, func() string { return file }, `is the source`},
		"inside the source":  {func() string { return e.dir }, func() string { return filepath.Join(e.dir, "out.zip") }, `(?s)inside the source directory.*excludes`},
		"a named pipe":       {func() string { return e.dir }, func() string { return fifo }, `named pipe`},
		"a character device": {func() string { return e.dir }, func() string { return dev }, `character device`},
		"a socket":           {func() string { return e.dir }, func() string { return sock }, `socket`},
		"a directory":        {func() string { return e.dir }, func() string { return dir }, `directory`},
	} {
		t.Run(name, func(t *testing.T) {
			e.store = filepath.Join(t.TempDir(), "store")
			if name == "a blob in the store" || name == "through a link and .." { // a store that already holds the blob
				if _, _, err := e.backend().PutFile(context.Background(), file); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Lstat(c.out())
			keysBefore, err := e.backend().Backend().List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			var blobBefore []byte
			if name != "the store itself" && before != nil && before.Mode().IsRegular() {
				blobBefore, _ = os.ReadFile(c.out())
			}
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config:      e.artifactConfig(c.source(), `archive = "zip"`, fmt.Sprintf("output_path = %q", c.out())),
					ExpectError: regexp.MustCompile(`(?s)Refusing to write output_path.*` + c.err + `.*Nothing\s+was\s+written`),
				}},
			})
			if keys, _ := e.backend().Backend().List(context.Background(), ""); len(keys) != len(keysBefore) {
				t.Fatalf("the store changed: %v, before %v", keys, keysBefore)
			}
			after, _ := os.Lstat(c.out())
			if before != nil && (after == nil || !os.SameFile(before, after) || after.Mode() != before.Mode()) {
				t.Fatalf("%s was replaced", c.out())
			}
			if blobBefore != nil {
				if now, _ := os.ReadFile(c.out()); string(now) != string(blobBefore) {
					t.Fatalf("%s was overwritten", c.out())
				}
			}
		})
	}

	// Inside the source but left out by excludes: written, and the next plan
	// is empty (the archive is not part of the digest).
	t.Run("excluded part of the source", func(t *testing.T) {
		e.store = filepath.Join(t.TempDir(), "store")
		cfg := e.artifactConfig(e.dir, `archive = "zip"`, `excludes = ["build"]`, fmt.Sprintf("output_path = %q", filepath.Join(e.dir, "build", "out.zip")))
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{Config: cfg},
				{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			},
		})
	})
}

// TestAccArtifact_archiveReferenceChecked: an archive reference pointed at
// another tree's archive (the store edited by hand) is never trusted: a
// plan that would use it fails, writing output_path fails and writes
// nothing, and verify_on_refresh notices. A damaged archive blob gets an
// error that says which object to delete, not a permissions hint.
func TestAccArtifact_archiveReferenceChecked(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(map[string]string{"index.js": "exports.handler = 1\n"})
		evil := filepath.Join(filepath.Dir(e.dir), "evil")
		must(t, os.MkdirAll(evil, 0o755))
		must(t, os.WriteFile(filepath.Join(evil, "index.js"), []byte("exports.handler = stealSecrets\n"), 0o644))
		out := filepath.Join(filepath.Dir(e.dir), "lambda.zip")
		both := e.artifactConfig(e.dir, `archive = "zip"`, fmt.Sprintf("output_path = %q", out)) + fmt.Sprintf(`
resource "immutable_artifact" "evil" {
  source  = %q
  archive = "zip"
}
`, evil)
		var evilZip string
		swap := func() {
			st := e.backend()
			m, err := st.GetListing(context.Background(), mustParse(digestOf(t, e.dir)))
			if err != nil {
				t.Fatal(err)
			}
			e.tamper(store.ArchiveKey(archive.Version("zip"), m.Digest()), []byte("sha256:"+evilZip+"\n"))
			must(t, os.Remove(out)) // a fresh machine: output_path must be written again
		}
		again := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "again" {
  source  = %q
  archive = "zip"
}
`, e.dir)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: both,
					Check: func(s *terraformState) error {
						evilZip = s.RootModule().Resources["immutable_artifact.evil"].Primary.Attributes["archive_sha256"]
						return nil
					},
				},
				{
					PreConfig:   swap,
					Config:      both,
					ExpectError: regexp.MustCompile(`(?s)Stored archive does not match its reference.*does not hold the listing.*delete the reference object\s+archives/zip-v1/`),
				},
				{
					// Another artifact of the same content would take the hash from
					// the reference at plan: refused there.
					Config:      both + again[len(e.providerBlock()):],
					ExpectError: regexp.MustCompile(`(?s)Stored archive does not match its reference`),
				},
			},
		})
		if _, err := os.Stat(out); err == nil {
			t.Fatal("output_path was written from a swapped reference")
		}
	})
}

// TestAccArtifact_verifyOnRefreshCoversArchives: with verify_on_refresh,
// an artifact whose archive reference was swapped fails refresh.
func TestAccArtifact_verifyOnRefreshCoversArchives(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"a.txt": "a\n"})
	other := filepath.Join(filepath.Dir(e.dir), "other")
	must(t, os.MkdirAll(other, 0o755))
	must(t, os.WriteFile(filepath.Join(other, "b.txt"), []byte("b\n"), 0o644))
	cfg := e.providerBlock("verify_on_refresh = true") + fmt.Sprintf(`
resource "immutable_artifact" "site" {
  source  = %q
  archive = "tar.gz"
}
resource "immutable_artifact" "other" {
  source  = %q
  archive = "tar.gz"
}
`, e.dir, other)
	var otherArchive, siteArchive string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: func(s *terraformState) error {
					otherArchive = s.RootModule().Resources["immutable_artifact.other"].Primary.Attributes["archive_sha256"]
					siteArchive = s.RootModule().Resources[site].Primary.Attributes["archive_sha256"]
					return nil
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				// site's reference pointed at other's (valid) archive.
				PreConfig: func() {
					e.tamper(store.ArchiveKey(archive.Version("tar.gz"), mustParse(digestOf(t, e.dir))), []byte("sha256:"+otherArchive+"\n"))
				},
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Stored archive reference altered.*names\s+sha256:[0-9a-f]{64}`),
			},
			{
				// Restored by hand; then the archive blob of site replaced by other's bytes.
				PreConfig: func() {
					ref := e.read(store.BlobKey(mustParse("sha256:" + otherArchive)))
					key := store.ArchiveKey(archive.Version("tar.gz"), mustParse(digestOf(t, e.dir)))
					e.tamper(key, []byte("sha256:"+siteArchive+"\n"))
					e.tamper(store.BlobKey(mustParse("sha256:"+siteArchive)), ref)
				},
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Stored archive is corrupt.*content hashes\s+to.*delete\s+it`),
			},
		},
	})
}

// TestAccArtifact_linkLeavingTheTree: a symlink that leaves the tree is
// recorded in a tree, but refused in an archive, at plan, naming the link
// and its target.
func TestAccArtifact_linkLeavingTheTree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"index.js": "x\n"})
	must(t, os.Symlink("/etc/passwd", filepath.Join(e.dir, "passwd")))
	must(t, os.Symlink("../../outside", filepath.Join(e.dir, "up")))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      e.artifactConfig(e.dir, `archive = "tar.gz"`),
				ExpectError: regexp.MustCompile(`(?s)Cannot archive a link that leaves the tree.*"passwd" points to "/etc/passwd"`),
			},
			{
				Config:      e.artifactConfig(e.dir, `archive = "zip"`, `excludes = ["passwd"]`),
				ExpectError: regexp.MustCompile(`(?s)"up" points to "\.\./\.\./outside"`),
			},
			{
				Config: e.artifactConfig(e.dir),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(site, tfjsonpath.New("files").AtMapKey("passwd"),
						knownvalue.StringExact("symlink "+digest.Bytes([]byte("/etc/passwd")).String())),
				},
			},
		},
	})
	if keys, _ := e.backend().Backend().List(context.Background(), "archives/"); len(keys) != 0 {
		t.Fatalf("an archive was stored: %v", keys)
	}
}

// TestAccArtifact_listingTooLarge: a tree whose listing the store could not
// give back is refused at plan, naming source and the limit, with nothing
// written. (Serial: it lowers the process-wide limit.)
func TestAccArtifact_listingTooLarge(t *testing.T) {
	e := newEnv(t)
	e.write(siteFiles)
	old := store.MaxListing
	store.MaxListing = 100 // bytes: fewer than this tree's listing
	defer func() { store.MaxListing = old }()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      e.artifactConfig(e.dir),
			ExpectError: regexp.MustCompile(`(?s)Source too large for one artifact.*over\s+the\s+limit\s+of\s+100\s+bytes.*Nothing\s+was\s+written`),
		}},
	})
	if keys, _ := e.backend().Backend().List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("written: %v", keys)
	}
}

// TestAccArtifact_unsafeArchiveNames: a name an extractor could read as a
// path out of its directory ("\\" or ":", as Windows tools do) is refused
// in archives at plan; the tree itself still records it.
func TestAccArtifact_unsafeArchiveNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"index.js": "x\n", "..\\..\\evil.txt": "y\n"})
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      e.artifactConfig(e.dir, `archive = "zip"`),
				ExpectError: regexp.MustCompile(`(?s)Cannot archive this file name.*cannot go into an archive\s+safely`),
			},
			{Config: e.artifactConfig(e.dir)},
		},
	})
}

// TestAccArtifact_storeInsideSource: a local store inside the directory
// source would be hashed into the artifact and replace it on every plan:
// refused, unless excludes leave it out (then plans settle).
func TestAccArtifact_storeInsideSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(siteFiles)
	e.store = filepath.Join(e.dir, ".immutable")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      e.artifactConfig(e.dir),
				ExpectError: regexp.MustCompile(`(?s)The store is inside the source.*excludes\s+=\s+\[".immutable"\]`),
			},
			{Config: e.artifactConfig(e.dir, `excludes = [".immutable"]`)},
			{
				Config:           e.artifactConfig(e.dir, `excludes = [".immutable"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// TestPrintable: a path with control characters is quoted in messages, so
// it cannot clear or rewrite the terminal showing the plan.
func TestPrintable(t *testing.T) {
	if got := printable("x\x1b[2J\rOK"); got != `"x\x1b[2J\rOK"` {
		t.Fatalf("printable = %s", got)
	}
	if got := printable("css/site ü.css"); got != "css/site ü.css" {
		t.Fatalf("printable changed a plain path: %s", got)
	}
}

// TestAccArtifact_sharedOutputPath: two artifacts writing different
// archives to one output_path are refused at plan (they would rewrite it
// in turn on every apply); the same archive twice is fine.
func TestAccArtifact_sharedOutputPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(map[string]string{"a/index.js": "a\n", "b/index.js": "b\n"})
	out := filepath.Join(filepath.Dir(e.dir), "shared.zip")
	two := func(second string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "a" {
  source      = %q
  archive     = "zip"
  output_path = %q
}
resource "immutable_artifact" "b" {
  source      = %q
  archive     = "zip"
  output_path = %q
}
`, filepath.Join(e.dir, "a"), out, filepath.Join(e.dir, second), out)
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: two("b"), ExpectError: regexp.MustCompile(`(?s)Two artifacts write one output_path`)},
			{Config: two("a")},
		},
	})
}

// TestAccArtifact_nonNFCNames: a name Terraform would normalize (é as e +
// U+0301, beside é as one code point) leaves `files` null instead of
// making a plan that cannot be applied; a change is still a replacement.
func TestAccArtifact_nonNFCNames(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"cafe\u0301.txt": "decomposed\n", "caf\u00e9.txt": "composed\n"})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.artifactConfig(e.dir),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_artifact.site", tfjsonpath.New("files"), knownvalue.Null()),
					statecheck.ExpectKnownValue("immutable_artifact.site", tfjsonpath.New("file_count"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue("immutable_artifact.site", tfjsonpath.New("digest"), knownvalue.StringExact(digestOf(t, e.dir))),
				},
			},
			{
				PreConfig: func() { e.write(map[string]string{"cafe\u0301.txt": "changed\n"}) },
				Config:    e.artifactConfig(e.dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_artifact.site", plancheck.ResourceActionReplace),
				}},
			},
		},
	})
}
