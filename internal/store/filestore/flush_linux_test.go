package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// The filesystem is synced through a descriptor opened before the first
// staged byte was written, so a writeback error that happened since —
// even one another program's sync was told of first — is reported; and
// once reported, every later flush of the process fails with it, since
// the failed write may have been any staged file's.
func TestFlushSeesWritebackErrorsSinceTheFirstStage(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	var fds []int
	injected := errors.New("input/output error")
	old := syncfs
	syncfs = func(fd int) error {
		fds = append(fds, fd)
		if len(fds) == 1 {
			return injected
		}
		return old(fd)
	}
	t.Cleanup(func() { syncfs = old })
	oldWB := startWriteback
	watchedFirst := true
	startWriteback = func(f *os.File) {
		if b.watched.fd() == nil {
			watchedFirst = false
		}
		oldWB(f)
	}
	t.Cleanup(func() { startWriteback = oldWB })

	stage := func(from int) []store.Staged {
		var staged []store.Staged
		for i := from; i < from+syncfsFrom; i++ {
			s, err := b.Stage(ctx, fmt.Sprintf("blobs/sha256/%02x/%d", i%256, i), strings.NewReader(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			staged = append(staged, s)
		}
		return staged
	}
	if err := b.Commit(ctx, stage(0)); !errors.Is(err, injected) {
		t.Fatalf("Commit after a reported writeback error = %v, want it", err)
	}
	if !watchedFirst {
		t.Error("a staged file's writeback started before the descriptor that reports its errors was open")
	}
	if len(fds) != 1 || fds[0] != int(b.watched.fd().Fd()) {
		t.Errorf("syncfs called on %v, want once on the descriptor opened at the first Stage (%d)", fds, b.watched.fd().Fd())
	}
	// A later Commit fails too, though this sync reports nothing.
	if err := b.Commit(ctx, stage(syncfsFrom)); !errors.Is(err, injected) {
		t.Fatalf("a later Commit = %v, want the error reported before", err)
	}
	if listed, _ := b.List(ctx, ""); len(listed) != 0 {
		t.Errorf("objects committed after a writeback error: %v", listed)
	}
}

// A Commit whose link fails part-way still makes the objects it already
// linked durable — they are visible — before it returns the failure.
func TestCommitFlushesWhatItLinkedBeforeAFailure(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	calls := 0
	old := syncfs
	syncfs = func(fd int) error { calls++; return old(fd) }
	t.Cleanup(func() { syncfs = old })
	refused := errors.New("link refused")
	n := 0
	b.link = func(oldname, newname string) error {
		if n++; n == 2*syncfsFrom {
			return refused
		}
		return os.Link(oldname, newname)
	}
	var staged []store.Staged
	for i := range 3 * syncfsFrom {
		s, err := b.Stage(ctx, fmt.Sprintf("blobs/sha256/%02x/%d", i, i), strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	if err := b.Commit(ctx, staged); !errors.Is(err, refused) {
		t.Fatalf("Commit = %v, want the link's failure", err)
	}
	if calls != 2 {
		t.Errorf("syncfs called %d times, want 2: the staged files, then the folders of the %d objects linked", calls, 2*syncfsFrom-1)
	}
	if listed, _ := b.List(ctx, ""); len(listed) != 2*syncfsFrom-1 {
		t.Errorf("%d objects visible, want the %d linked before the failure", len(listed), 2*syncfsFrom-1)
	}
}
