package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// A digest known only after apply (a data source read late, a release of
// the same apply; here terraform_data) on an export that exists updates it
// in place: the target is known, so nothing is removed first, and what
// others put inside it is carried over.
func TestAccExport_unknownDigestUpdatesInPlace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, d2 := e.publishTwo(siteFiles, siteV2)
	out := filepath.Join(t.TempDir(), "site")
	cfg := func(d string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "terraform_data" "d" {
  input = %q
}
resource "immutable_export" "site" {
  digest = terraform_data.d.output
  path   = %q
}
`, d, out)
	}
	upload := filepath.Join(out, "upload.txt")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg(d1)},
			{
				PreConfig: func() { must(t, os.WriteFile(upload, []byte("theirs"), 0o644)) },
				Config:    cfg(d2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(exp, tfjsonpath.New("id"), knownvalue.StringExact(out)),
				}},
				Check: func(*terraform.State) error {
					if b, err := os.ReadFile(upload); err != nil || string(b) != "theirs" {
						return fmt.Errorf("the file others put in the export is %q, %v", b, err)
					}
					for name, want := range map[string]string{"index.html": siteV2["index.html"], "new.html": siteV2["new.html"]} {
						if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
							return fmt.Errorf("%s is %q, %v; want %q (the new version)", name, b, err, want)
						}
					}
					return nil
				},
			},
			{Config: cfg(d2), PlanOnly: true},
		},
	})
}

// What the user put where the export's file was is never swapped out and
// deleted by the update that repairs the drift: the apply is refused,
// naming what stands there, and it stays.
func TestAccExport_userReplacedTargetIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publishTwo(siteFiles, siteV2)
	fileDigest := digest.Bytes([]byte(siteFiles["index.html"])).String()
	out := filepath.Join(t.TempDir(), "index.html")
	precious := filepath.Join(out, "precious.txt")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.exportConfig(fileDigest, out)},
			{
				PreConfig: func() {
					must(t, os.Remove(out))
					must(t, os.Mkdir(out, 0o755))
					must(t, os.WriteFile(precious, []byte("mine"), 0o644))
				},
				Config: e.exportConfig(fileDigest, out),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(exp, plancheck.ResourceActionUpdate),
				}},
				ExpectError: regexp.MustCompile(`(?s)is\s+now\s+a\s+directory,\s+which\s+the\s+export\s+did\s+not\s+write.*Move\s+it\s+away\s+first`),
			},
			{
				PreConfig: func() {
					if b, err := os.ReadFile(precious); err != nil || string(b) != "mine" {
						t.Fatalf("the user's directory lost precious.txt: %q, %v", b, err)
					}
				},
				Config:             e.exportConfig(fileDigest, out),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// A tainted export cannot be replaced (core gives the new object's plan
// nothing of the old one, so its path looks like someone else's): the
// plan says to untaint it, and nothing is touched.
func TestAccExport_tainted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	out := filepath.Join(t.TempDir(), "site")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.exportConfig(d1, out)},
			{
				Config:      e.exportConfig(d1, out),
				Taint:       []string{exp},
				ExpectError: regexp.MustCompile(`(?s)Refusing to write over an existing path.*untaint`),
			},
			{
				PreConfig: func() {
					if err := treeIs(t, out, d1); err != nil {
						t.Fatalf("a refused plan changed the export: %v", err)
					}
				},
				Config:      e.exportConfig(d1, out),
				ExpectError: regexp.MustCompile(`(?s)Refusing to write over an existing path.*untaint`),
				PlanOnly:    true,
			},
		},
	})
}

// Import is refused, saying what to do instead.
func TestAccExport_importRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d1, _ := e.publishTwo(siteFiles, siteV2)
	other := filepath.Join(t.TempDir(), "site")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.exportConfig(d1, other)},
			{
				ResourceName:  exp,
				ImportState:   true,
				ImportStateId: other,
				ExpectError:   regexp.MustCompile(`(?s)cannot be imported.*Move\s+that\s+path\s+away`),
			},
		},
	})
}
