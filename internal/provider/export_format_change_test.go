package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// TestAccExport_formatChangesKind: changing an export's format between a
// directory (oci-layout) and a file (docker-archive) at the same path is
// planned as a replacement, and applies: it was planned as an in-place
// update, which always failed with "is now a directory, which the export
// did not write; the export wrote a docker-archive there".
func TestAccExport_formatChangesKind(t *testing.T) {
	e := newEnv(t)
	d := e.storeImage(siteFiles, nil)
	target := filepath.Join(t.TempDir(), "image")
	config := func(format string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_export" "img" {
  digest = %q
  path   = %q
  format = %q
}
`, d, target, format)
	}
	kind := func(dir bool) func() error {
		return func() error {
			fi, err := os.Lstat(target)
			if err != nil || fi.IsDir() != dir {
				return fmt.Errorf("%s: %v, %v: want a directory %v", target, fi, err, dir)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: config("oci-layout"), Check: func(*terraformState) error { return kind(true)() }},
			{
				Config: config("docker-archive"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_export.img", plancheck.ResourceActionReplace),
				}},
				Check: func(*terraformState) error { return kind(false)() },
			},
			{
				Config: config("oci-layout"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_export.img", plancheck.ResourceActionReplace),
				}},
				Check: func(*terraformState) error { return kind(true)() },
			},
		},
	})
}
