package provider

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func newS3Env(t *testing.T) *env {
	t.Helper()
	requireAcc(t)
	srv := testserver.StartS3(t)
	return &env{t: t, s3: srv, bucket: srv.NewBucket(t), dir: filepath.Join(t.TempDir(), "src")}
}

const emptyRelease = `
resource "immutable_release" "r" {
  name      = "app"
  artifacts = {}
}
`

// TestAccS3_badSettings: wrong credentials, a missing bucket and an
// unreachable endpoint each stop the plan with a diagnostic that names
// what to check, quickly.
func TestAccS3_badSettings(t *testing.T) {
	e := newS3Env(t)
	t.Run("wrong credentials", func(t *testing.T) {
		e.s3.Env(t)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:      e.providerBlock() + emptyRelease,
				ExpectError: regexp.MustCompile(`(?s)Cannot read the store.*credentials.*AWS_ACCESS_KEY_ID`),
			}},
		})
	})
	t.Run("missing bucket", func(t *testing.T) {
		other := *e
		other.bucket = "no-such-bucket"
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:      other.providerBlock() + emptyRelease,
				ExpectError: regexp.MustCompile(`(?s)the\s+bucket\s+"no-such-bucket"\s+does\s+not\s+exist.*store`),
			}},
		})
	})
	// An endpoint without a scheme: the SDK would take it and fail only at
	// the first request, as a network error.
	t.Run("endpoint without a scheme", func(t *testing.T) {
		other := *e
		other.endpoint = "localhost:9000"
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: other.providerBlock() + emptyRelease,
				// On the attribute: Terraform quotes its line.
				ExpectError: regexp.MustCompile(`(?s)Invalid S3 endpoint.*endpoint\s+=\s+"localhost:9000".*` +
					`s3\.endpoint\s+"localhost:9000"\s+has\s+no\s+scheme:\s+write\s+the\s+URL\s+of\s+the\s+server,\s+http://localhost:9000\s+or\s+https://localhost:9000`),
			}},
		})
	})
	t.Run("endpoint without a scheme in the environment", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_S3", "localhost:9000")
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:      fmt.Sprintf("provider \"immutable\" {\n  store = %q\n  s3 {\n    region = %q\n    use_path_style = true\n  }\n}\n", e.storeURL(), e.s3.Region) + emptyRelease,
				ExpectError: regexp.MustCompile(`(?s)Invalid S3 endpoint.*AWS_ENDPOINT_URL_S3\s+"localhost:9000"\s+has\s+no\s+scheme`),
			}},
		})
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		addr := l.Addr().String()
		must(t, l.Close()) // nothing listens there now
		other := *e
		other.endpoint = "http://" + addr
		start := time.Now()
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:      other.providerBlock() + emptyRelease,
				ExpectError: regexp.MustCompile(`(?s)cannot reach.*s3\.endpoint`),
			}},
		})
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("took %v: retries are not bounded", d)
		}
	})
}

// TestAccS3_readOnlyPlan: a plan needs only read and list permissions;
// only apply writes, and with read-only credentials it fails clearly.
func TestAccS3_readOnlyPlan(t *testing.T) {
	e := newS3Env(t)
	e.write(siteFiles)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: e.releaseConfig()}, // published by the root user
			{
				PreConfig: func() {
					access, secret := e.s3.AddReader(t, e.bucket)
					t.Setenv("AWS_ACCESS_KEY_ID", access)
					t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
					e.write(map[string]string{"index.html": "<h1>read-only</h1>\n"})
				},
				// The plan reads the store (versions, adoption) and works.
				Config:             e.releaseConfig(),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: e.releaseConfig(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					planVersion("1.0.1"),
				}},
				ExpectError: regexp.MustCompile(`(?s)Cannot write to the store.*access denied.*s3:PutObject`),
			},
			{
				PreConfig: func() { e.s3.Env(t) }, // back to a writer
				Config:    e.releaseConfig(),
			},
		},
	})
}

// TestAccS3_serverStoppedMidApply: the server dies between storing the
// artifacts and publishing the release: the apply fails clearly, nothing
// half-written is visible, and an apply after the restart completes.
func TestAccS3_serverStoppedMidApply(t *testing.T) {
	e := newS3Env(t)
	e.write(siteFiles)
	var publishHook testHook
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6With(hooks{beforePublish: publishHook.run}),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					// The provider runs in this process: the hook stops the
					// server at the moment of publishing, no polling needed.
					t.Cleanup(publishHook.set(func(context.Context) error {
						e.s3.Stop()
						return nil
					}))
				},
				Config:      e.releaseConfig(),
				ExpectError: regexp.MustCompile(`(?s)Cannot write to the store.*cannot reach`),
			},
			{
				PreConfig: func() {
					publishHook.set(nil)
					e.s3.Start()
					if keys, _ := e.backend().Backend().List(context.Background(), "releases/"); len(keys) != 0 {
						t.Fatalf("a release object is visible after the failed apply: %v", keys)
					}
				},
				Config: e.releaseConfig(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(rel, plancheck.ResourceActionCreate),
					planVersion("1.0.0"),
				}},
				Check: func(*terraformState) error {
					vs, err := release.List(context.Background(), e.backend().Backend(), "web")
					if err != nil || len(vs) != 1 {
						return fmt.Errorf("versions after the re-apply: %v %v", vs, err)
					}
					return nil
				},
			},
		},
	})
}
