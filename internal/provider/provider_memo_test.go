package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// TestAccManyResources: 200 artifacts over one tree and 200 releases of
// them plan without redundant work: the tree is walked once per Terraform
// operation, not once per resource.
func TestAccManyResources(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("d%d/f%03d.txt", i%7, i)] = fmt.Sprint(i)
	}
	e.write(files)
	config := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "a" {
  count  = 200
  source = %q
}
resource "immutable_release" "r" {
  count     = 200
  name      = "app-${count.index}"
  artifacts = { site = immutable_artifact.a[count.index].digest }
}
`, e.dir)
	statcache.TreeWalks.Store(0)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:             config,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
	// One plan operation (plugin-testing may plan more than once per step);
	// 200 artifacts with no sharing would walk at least 200 times.
	if n := statcache.TreeWalks.Load(); n < 1 || n > 3 {
		t.Fatalf("the tree was walked %d times for 200 artifacts", n)
	}
}
