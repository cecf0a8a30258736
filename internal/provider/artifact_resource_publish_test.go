package provider

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// manyFiles writes n small files of distinct content under dir.
func manyFiles(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%05d.txt", i))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, fmt.Appendf(nil, "file %d\n", i), 0o644))
	}
}

// TestAccArtifact_republishInProportion: re-publishing a 2,000-file tree
// with one file changed sends that file and the new listing, and reads
// the replaced version's listing (its digest from the state the destroy
// half of the replacement gets) instead of
// asking about every file: a handful of requests on S3, two new objects
// on the local store; the same tree published again sends nothing.
func TestAccArtifact_republishInProportion(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const n = 2000
		manyFiles(t, e.dir, n)
		var counter *testserver.Counter
		if e.s3 != nil {
			counter = e.s3.Count(t)
			e.endpoint = counter.Endpoint
		}
		objects := func() []string { // content: leases (gc/) aside
			keys, err := e.backend().Backend().List(context.Background(), "")
			must(t, err)
			return slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k, "gc/") })
		}
		var first string
		var before []string
		changed := filepath.Join(e.dir, "d07", "f00007.txt")
		next := filepath.Join(t.TempDir(), "dist-2")
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.artifactConfig(e.dir),
					Check: func(s *terraform.State) error {
						first = s.RootModule().Resources[site].Primary.Attributes["digest"]
						before = objects()
						if len(before) != n+1 {
							return fmt.Errorf("the store holds %d objects after the first publish, want %d blobs and a listing", len(before), n+1)
						}
						return nil
					},
				},
				{
					PreConfig: func() {
						must(t, os.WriteFile(changed, []byte("changed\n"), 0o644))
						if counter != nil {
							counter.Reset()
						}
					},
					Config: e.artifactConfig(e.dir),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(site, plancheck.ResourceActionReplace),
					}},
					Check: func(*terraform.State) error {
						after := objects()
						var added []string
						for _, k := range after {
							if !slices.Contains(before, k) {
								added = append(added, k)
							}
						}
						if len(added) != 2 || !strings.HasPrefix(added[0], "blobs/") || !strings.HasPrefix(added[1], "trees/") {
							return fmt.Errorf("one file changed added %v, want its blob and the new listing", added)
						}
						if counter == nil {
							return nil
						}
						// The whole step (refresh, plan, apply, the plan after),
						// exactly: the refresh's HEAD of the old listing (the plan
						// names the changed paths from this machine's copy of it);
						// the apply's identity GET, lease PUT and markers LIST
						// (store.Hold), HEAD of the new listing, one GET of the old
						// one (its blobs need no HEAD), the changed blob and the
						// new listing. Never a request per file, never the old
						// listing read twice.
						puts, heads := counter.Calls(http.MethodPut, ""), counter.Calls(http.MethodHead, "/blobs/")
						leases := counter.Calls(http.MethodPut, "/gc/leases/")
						oldReads := counter.Calls(http.MethodGet, "/trees/")
						if all := counter.Calls("", ""); len(puts) != 3 || len(leases) != 1 || len(heads) != 0 || len(oldReads) != 1 || len(all) != 8 {
							return fmt.Errorf("one file changed: %d PUT (%d leases), %d HEAD of blobs, %d GET of listings, %d requests in all; want 3 (1), 0, 1, 8: %v",
								len(puts), len(leases), len(heads), len(oldReads), len(all), all)
						}
						return nil
					},
				},
				{
					// Back to the first content: its listing is stored, so
					// nothing is sent.
					PreConfig: func() {
						must(t, os.WriteFile(changed, []byte("file 7\n"), 0o644))
						if counter != nil {
							counter.Reset()
						}
					},
					Config: e.artifactConfig(e.dir),
					Check: func(s *terraform.State) error {
						if got := s.RootModule().Resources[site].Primary.Attributes["digest"]; got != first {
							return fmt.Errorf("reverted tree has digest %s, want %s", got, first)
						}
						if counter != nil {
							// No content: one lease, holding the listing it found.
							if puts, leases := counter.Calls(http.MethodPut, ""), counter.Calls(http.MethodPut, "/gc/leases/"); len(puts) != 1 || len(leases) != 1 {
								return fmt.Errorf("re-publishing a stored tree sent %d PUTs, want only a lease: %v", len(puts), puts)
							}
						}
						return nil
					},
				},
				{
					// A versioned folder (dist-1 → dist-2) with one file
					// changed: the source path changed too, and still only
					// that file is sent.
					PreConfig: func() {
						must(t, os.CopyFS(next, os.DirFS(e.dir)))
						must(t, os.WriteFile(filepath.Join(next, "d09", "f00009.txt"), []byte("changed in dist-2\n"), 0o644))
						before = objects()
						if counter != nil {
							counter.Reset()
						}
					},
					Config: e.artifactConfig(next),
					Check: func(*terraform.State) error {
						if added := len(objects()) - len(before); added != 2 {
							return fmt.Errorf("a new folder with one file changed added %d objects, want its blob and its listing", added)
						}
						if counter != nil {
							if puts, leases := counter.Calls(http.MethodPut, ""), counter.Calls(http.MethodPut, "/gc/leases/"); len(puts)-len(leases) != 2 || len(leases) != 1 {
								return fmt.Errorf("a new folder with one file changed sent %d PUTs (%d leases), want 2 and a lease: %v", len(puts), len(leases), puts)
							}
						}
						return nil
					},
				},
			},
		})
	})
}

// TestAccS3_manyArtifactsShareOnePool: 200 artifacts in one configuration
// use the provider's one client and its pool: never more requests in
// flight, nor connections open, than max_concurrency, while Terraform
// applies ten of them at a time.
func TestAccS3_manyArtifactsShareOnePool(t *testing.T) {
	requireAcc(t)
	e := newS3Env(t)
	counter := e.s3.Count(t)
	e.endpoint = counter.Endpoint
	for i := range 200 {
		manyFiles(t, filepath.Join(e.dir, fmt.Sprintf("a%03d", i)), 3+i%5)
		must(t, os.WriteFile(filepath.Join(e.dir, fmt.Sprintf("a%03d", i), "id.txt"), fmt.Appendf(nil, "artifact %d\n", i), 0o644))
	}
	config := e.providerBlock() + fmt.Sprintf(`
resource "immutable_artifact" "many" {
  count  = 200
  source = format("%%s/a%%03d", %q, count.index)
}
`, e.dir)
	config = strings.Replace(config, "use_path_style = true", "use_path_style = true\n    max_concurrency = 4", 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			PreConfig: counter.Reset,
			Config:    config,
			Check: func(*terraform.State) error {
				if got := len(counter.Calls(http.MethodPut, "/trees/")); got != 200 {
					return fmt.Errorf("%d listings stored, want 200", got)
				}
				if got := counter.MaxInFlight(); got > 4 {
					return fmt.Errorf("%d requests in flight at once, over max_concurrency = 4", got)
				}
				// One pool per provider instance: the step runs a few tofu
				// commands (plan, apply, the plans after it), each with a
				// provider of its own whose idle connections stay open in
				// this test process; a client per resource would open
				// hundreds.
				t.Logf("connections opened: %d, at most open at once: %d", counter.Conns(), counter.MaxOpenConns())
				if got := counter.Conns(); got > 16 {
					return fmt.Errorf("%d connections opened for 200 artifacts: more than a pool of 4 per provider instance", got)
				}
				return nil
			},
		}},
	})
}

// TestAccS3_outputPathOnAFreshMachine: a CI runner with fresh state and no
// archive on disk writes output_path from the stored archive: a handful
// of requests whatever the number of files, never one per file.
func TestAccS3_outputPathOnAFreshMachine(t *testing.T) {
	requireAcc(t)
	e := newS3Env(t)
	counter := e.s3.Count(t)
	e.endpoint = counter.Endpoint
	manyFiles(t, e.dir, 300)
	config := func(out string) string {
		return e.artifactConfig(e.dir, `archive = "zip"`, fmt.Sprintf("output_path = %q", out))
	}
	first := filepath.Join(t.TempDir(), "first.zip")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps:                    []resource.TestStep{{Config: config(first)}},
	})
	// The second machine: new state, new output path, the same store.
	second := filepath.Join(t.TempDir(), "second.zip")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			PreConfig: counter.Reset,
			Config:    config(second),
			Check: func(*terraform.State) error {
				a, err := os.ReadFile(first)
				if err != nil {
					return err
				}
				b, err := os.ReadFile(second)
				if err != nil {
					return err
				}
				if string(a) != string(b) {
					return fmt.Errorf("the second machine's zip differs from the first's")
				}
				// The archive's reference and blob, and the listing: read a
				// few times over the plans and the apply, never per file.
				// Leases aside (the apply holds what it found stored).
				if puts, leases := counter.Calls(http.MethodPut, ""), counter.Calls(http.MethodPut, "/gc/leases/"); len(puts) != len(leases) {
					return fmt.Errorf("a fresh machine stored %d objects for content already stored: %v", len(puts)-len(leases), puts)
				}
				t.Logf("requests on a fresh machine: %d", len(counter.Calls("", "")))
				if all := counter.Calls("", ""); len(all) > 12 {
					return fmt.Errorf("a fresh machine took %d requests for a 300-file artifact already stored: %v", len(all), all)
				}
				return nil
			},
		}},
	})
}
