package provider

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccPublishTellsOfAnInterruptedCollection: a collection killed while
// deleting blobs a publish reuses leaves its marker; the publish waits
// for it until it expires (as the collector protocol requires: the marker
// may be a live collector's), and then ends with a warning on the
// resource, shown at the default log level, that names the marker, says
// how long it waited, when the marker expired and what to do. The marker
// is written as the collector writes it and aged to expire a few seconds
// into the apply, so the test waits seconds, not minutes.
func TestAccPublishTellsOfAnInterruptedCollection(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.write(siteFiles)
		factories, diags := recordingProvider()
		marker := store.MarkerKey(store.NewObjectID(time.Now()))
		condemned := store.BlobKey(digest.Bytes([]byte(siteFiles["index.html"])))
		// The time left to the marker: enough for tofu to start and
		// plan, so that the apply meets it before it expires.
		const left = 10 * time.Second
		killed := func() {
			st := e.backend()
			must(t, st.Backend().Create(ctx, marker, strings.NewReader(string(store.MarkerBody([]string{condemned})))))
			to := time.Now().Add(-(store.MarkerTTL - left))
			var p string
			if e.s3 != nil {
				p = filepath.Join(e.s3.Root(), e.bucket, filepath.FromSlash(e.s3Backend().ObjectKey(marker)))
			} else {
				p = filepath.Join(e.store, filepath.FromSlash(marker))
			}
			must(t, os.Chtimes(p, to, to))
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: factories,
			Steps: []resource.TestStep{{
				PreConfig: killed,
				Config:    e.artifactConfig(e.dir),
				Check: func(*terraformState) error {
					detail, err := warningOf(diags(), "Waited for an interrupted garbage collection")
					if err != nil {
						return err
					}
					for _, want := range []*regexp.Regexp{
						regexp.MustCompile(regexp.QuoteMeta(marker)),
						regexp.MustCompile(`waited \d+(\.\d+)?m?s for`),
						regexp.MustCompile(`expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`),
						regexp.MustCompile(`Run the collection again \(terraform-provider-immutable gc`),
					} {
						if !want.MatchString(detail) {
							t.Errorf("the warning does not match %s:\n%s", want, detail)
						}
					}
					return nil
				},
			}},
		})
	})
}
