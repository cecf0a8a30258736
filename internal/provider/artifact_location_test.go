package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccArtifact_locations: an artifact says where its bytes and its
// archive live, in the forms deploy resources take — the absolute path of
// the read-only stored file on a local store, bucket/key/URL on S3 — known
// at plan, and the object really is there after apply.
func TestAccArtifact_locations(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		e.write(map[string]string{"handler.py": "def handler(e, c): return 1\n"})
		src := filepath.Join(e.dir, "handler.py")
		sum := digest.Bytes([]byte("def handler(e, c): return 1\n"))
		blob := store.BlobKey(sum)
		cfg := e.artifactConfig(src, `archive = "zip"`) + fmt.Sprintf(`
resource "immutable_artifact" "tree" {
  source  = %q
  archive = "tar.gz"
}
`, e.dir)
		withData := cfg + `
data "immutable_artifact" "file" {
  digest = immutable_artifact.site.digest
}
data "immutable_artifact" "tree" {
  digest = immutable_artifact.tree.digest
}
`
		local := e.s3 == nil
		var planChecks []plancheck.PlanCheck
		if local {
			planChecks = []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(site, tfjsonpath.New("path"), knownvalue.StringExact(filepath.Join(e.store, filepath.FromSlash(blob)))),
				plancheck.ExpectKnownValue(site, tfjsonpath.New("s3_bucket"), knownvalue.Null()),
				plancheck.ExpectUnknownValue(site, tfjsonpath.New("archive_path")), // the archive is built on apply
				plancheck.ExpectKnownValue("immutable_artifact.tree", tfjsonpath.New("path"), knownvalue.Null()),
			}
		} else {
			key := "team/releases/" + blob
			planChecks = []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(site, tfjsonpath.New("s3_bucket"), knownvalue.StringExact(e.bucket)),
				plancheck.ExpectKnownValue(site, tfjsonpath.New("s3_key"), knownvalue.StringExact(key)),
				plancheck.ExpectKnownValue(site, tfjsonpath.New("s3_url"), knownvalue.StringExact("s3://"+e.bucket+"/"+key)),
				plancheck.ExpectKnownValue(site, tfjsonpath.New("path"), knownvalue.Null()),
				plancheck.ExpectUnknownValue(site, tfjsonpath.New("archive_s3_key")),
				plancheck.ExpectKnownValue("immutable_artifact.tree", tfjsonpath.New("s3_key"), knownvalue.Null()),
			}
		}
		// An object at a location holds the bytes of sha256 hex.
		holds := func(attrs map[string]string, pathAttr, bucketAttr, keyAttr, hexSum string) error {
			var b []byte
			var err error
			if local {
				p := attrs[pathAttr]
				fi, serr := os.Stat(p)
				if serr != nil || fi.Mode().Perm()&0o222 != 0 {
					return fmt.Errorf("%s %s: not a read-only stored file (%v)", pathAttr, p, serr)
				}
				b, err = os.ReadFile(p)
			} else {
				out, gerr := e.s3Backend().Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(attrs[bucketAttr]), Key: aws.String(attrs[keyAttr])})
				if gerr != nil {
					return fmt.Errorf("%s/%s: %v", attrs[bucketAttr], attrs[keyAttr], gerr)
				}
				defer func() { _ = out.Body.Close() }() // read-only
				b, err = io.ReadAll(out.Body)
			}
			if err != nil {
				return err
			}
			if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != hexSum {
				return fmt.Errorf("%s holds other bytes", pathAttr)
			}
			return nil
		}
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config:           cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: planChecks},
					Check: func(s *terraformState) error {
						attrs := s.RootModule().Resources[site].Primary.Attributes
						if err := holds(attrs, "path", "s3_bucket", "s3_key", sum.Hex()); err != nil {
							return err
						}
						return holds(attrs, "archive_path", "archive_s3_bucket", "archive_s3_key", attrs["archive_sha256"])
					},
				},
				{
					// The data source says the same for any stored digest.
					Config: withData,
					Check: func(s *terraformState) error {
						res := s.RootModule().Resources
						file, tree := res["data.immutable_artifact.file"].Primary.Attributes, res["data.immutable_artifact.tree"].Primary.Attributes
						fileRes, treeRes := res[site].Primary.Attributes, res["immutable_artifact.tree"].Primary.Attributes
						want := map[string][2]string{
							"file path":       {file["path"], fileRes["path"]},
							"file s3_key":     {file["s3_key"], fileRes["s3_key"]},
							"file s3_url":     {file["s3_url"], fileRes["s3_url"]},
							"tree archive":    {tree["archive_locations.tar.gz"], treeRes["archive_path"] + treeRes["archive_s3_key"]},
							"tree has no key": {tree["s3_key"], ""},
						}
						for what, v := range want {
							if v[0] != v[1] {
								return fmt.Errorf("%s: data source %q, resource %q", what, v[0], v[1])
							}
						}
						if tree["archive_locations.tar.gz"] == "" {
							return fmt.Errorf("no archive location in the data source")
						}
						return nil
					},
				},
				{
					// Unchanged: the locations are known at plan and nothing changes.
					Config: cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(site, tfjsonpath.New("archive_sha256"), knownvalue.NotNull()),
					},
				},
			},
		})
	})
}
