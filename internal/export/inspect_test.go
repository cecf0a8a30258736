package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// TestInspectNamesDrift: what changed in an export is named, its own
// files only, also when the tree holds something that cannot be hashed.
func TestInspectNamesDrift(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	target := filepath.Join(t.TempDir(), "site")
	if _, err := w.Write(ctx, c, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(target, "index.html"), []byte("defaced"), 0o644))
	must(os.Remove(filepath.Join(target, "css", "site.css")))
	listing := func(context.Context) (*digest.Listing, error) { return c.Listing, nil }
	f, err := Inspect(ctx, target, Directory, c.Digest, hashTree, listing)
	if err != nil || f.Status != Differs || f.What != "css/site.css missing, index.html changed" {
		t.Errorf("Inspect = %+v, %v", f, err)
	}
	must(mkfifo(filepath.Join(target, "fifo")))
	f, err = Inspect(ctx, target, Directory, c.Digest, hashTree, listing)
	if err != nil || f.Status != Differs || f.What != "css/site.css missing, index.html changed" {
		t.Errorf("Inspect of an unhashable tree = %+v, %v", f, err)
	}
}
