package export

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// An export from S3 downloads its files several at once, within the
// store's max_concurrency, one GET per file: not a round trip per file in
// turn (10,000 files at 20 ms would be minutes).
func TestDownloadsRunInParallel(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	proxy := srv.Proxy(t, 20*time.Millisecond)
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	settings.MaxConcurrency = 8
	ctx := context.Background()
	b, err := s3store.New(ctx, bucket, "", settings)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	files := map[string]string{}
	for i := range 64 {
		files[fmt.Sprintf("d%d/f%02d.txt", i%4, i)] = fmt.Sprintf("file %d\n", i)
	}
	c := stored(t, st, files)
	proxy.Reset()
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := filepath.Join(t.TempDir(), "site")
	if _, err := w.Write(ctx, c, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if w.Fetched != 64 {
		t.Errorf("fetched %d files, want 64", w.Fetched)
	}
	if gets := len(proxy.Calls(http.MethodGet, "/blobs/")); gets != 64 {
		t.Errorf("%d blob GETs for 64 files, want one each", gets)
	}
	if got := proxy.MaxInFlight(); got < 2 || got > 8 {
		t.Errorf("%d requests in flight at most; want several at once, and no more than max_concurrency 8", got)
	}
	m, err := hashTree(ctx, target)
	if err != nil || m.Digest() != c.Digest {
		t.Errorf("the export holds %v (%v), want %s", m, err, c.Digest)
	}
}
