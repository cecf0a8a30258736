package gc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestLinkedFoldersRefused: fan-out folders moved out of a local store and
// linked back stop the collection before anything is deleted, and the
// error names every link. Skipping them silently (as the collector did)
// leaves their garbage and, worse, hides a kept listing behind a link, so
// that the blobs it names were deleted as unreachable; following them
// would delete outside the store.
func TestLinkedFoldersRefused(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	root := w.st.Backend().(*filestore.Backend).Root() //nolint:forcetypeassert // mustFilestore
	elsewhere := t.TempDir()
	// The folder of a blob the policy deletes, and the folder of the
	// listing of a kept version (1.5.0).
	garbage := store.BlobKey(digest.Bytes([]byte("only 1.0.0\n")))
	keptListing := store.ListingKey(w.trees["1.5.0"])
	var links []string
	for i, k := range []string{garbage, keptListing} {
		folder := k[:strings.LastIndex(k, "/")]
		out := filepath.Join(elsewhere, string(rune('a'+i)))
		must(t, os.Rename(filepath.Join(root, folder), out))
		must(t, os.Symlink(out, filepath.Join(root, folder)))
		links = append(links, folder)
	}
	slices.Sort(links)
	files := func() []string {
		var all []string
		for _, dir := range []string{root, elsewhere} {
			must(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					all = append(all, p)
				}
				return err
			}))
		}
		return all
	}
	before := files()
	_, err := Collect(ctx, w.st, policy, later())
	var le *store.LinkError
	if !errors.As(err, &le) || !slices.Equal(le.Links, links) {
		t.Fatalf("collecting a store with linked folders: %v; want a LinkError naming %v", err, links)
	}
	for _, l := range links {
		if !strings.Contains(err.Error(), l) {
			t.Errorf("the error does not name %s: %v", l, err)
		}
	}
	if after := files(); !slices.Equal(before, after) {
		t.Fatalf("a refused collection changed files:\nbefore %v\nafter  %v", before, after)
	}
	// Run through the command, it says so and fails.
	code, _, stderr := run("--store", "file://"+root, "--keep-last", "1")
	if code == 0 || !strings.Contains(stderr, links[0]) || !strings.Contains(stderr, "symbolic link") {
		t.Fatalf("gc on a store with linked folders: exit %d, stderr %s", code, stderr)
	}
	if after := files(); !slices.Equal(before, after) {
		t.Fatalf("gc changed files:\nbefore %v\nafter  %v", before, after)
	}
}
