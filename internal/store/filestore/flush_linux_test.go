package filestore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// A Commit of a few objects (a build step's output and record) fsyncs
// them instead of syncing the whole filesystem, whose other dirty pages
// (the step's Go build cache, its working directory) can take hundreds
// of milliseconds to write back; a Commit of many syncs the filesystem
// once.
func TestCommitSyncsTheFilesystemOnlyForMany(t *testing.T) {
	ctx := context.Background()
	calls := 0
	old := syncfs
	syncfs = func(fd int) error { calls++; return old(fd) }
	t.Cleanup(func() { syncfs = old })
	for _, n := range []int{1, 3, syncfsFrom} {
		b := newBackend(t)
		var staged []store.Staged
		for i := range n {
			s, err := b.Stage(ctx, fmt.Sprintf("blobs/sha256/%02x/%d", i%256, i), strings.NewReader(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			staged = append(staged, s)
		}
		calls = 0
		if err := b.Commit(ctx, staged); err != nil {
			t.Fatal(err)
		}
		switch {
		case n < syncfsFrom && calls != 0:
			t.Errorf("a Commit of %d objects called syncfs %d times, want an fsync each", n, calls)
		case n >= syncfsFrom && calls == 0:
			t.Errorf("a Commit of %d objects fsynced each, want a syncfs", n)
		}
		listed, err := b.List(ctx, "")
		if err != nil || len(listed) != n {
			t.Errorf("after a Commit of %d objects, List = %d objects, %v", n, len(listed), err)
		}
	}
}
