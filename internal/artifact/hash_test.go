package artifact

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// TestHash: a directory hashes to its listing, a file to its bytes with a
// one-entry listing named after it, inline content to its bytes.
func TestHash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.txt": "a\n", "bin/run*": "#!/bin/sh\n", "x.map": "m"})
	memo := statcache.NewMemo(nil)

	c, err := Hash(ctx, memo, Source{Path: dir, Excludes: []string{"*.map"}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := digest.HashTree(ctx, dir, digest.Options{Excludes: []string{"*.map"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sum != want.Digest() || c.Count != 2 || c.Size != want.Size() || c.Tree == nil || c.Listing != c.Tree {
		t.Fatalf("directory: %+v", c)
	}

	c, err = Hash(ctx, memo, Source{Path: filepath.Join(dir, "bin", "run")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sum != digest.Bytes([]byte("#!/bin/sh\n")) || c.Count != 1 || c.Tree != nil ||
		len(c.Listing.Entries) != 1 || c.Listing.Entries[0].Path != "run" || c.Listing.Entries[0].Kind != digest.KindExec {
		t.Fatalf("file: %+v %+v", c, c.Listing)
	}

	if c := Inline([]byte("x")); c.Sum != digest.Bytes([]byte("x")) || c.Size != 1 || c.Count != 1 || c.Listing != nil {
		t.Fatalf("inline: %+v", c)
	}
}

// TestHashRefuses: each source that cannot be hashed is refused with its
// own error type, and the function's callers can tell which argument.
func TestHashRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string]string{"f": "x"})
	file := filepath.Join(dir, "f")
	fifo := filepath.Join(t.TempDir(), "pipe")
	must(t, syscall.Mkfifo(fifo, 0o644))
	memo := statcache.NewMemo(nil)

	var exclude *ExcludeError
	if _, err := Hash(ctx, memo, Source{Path: dir, Excludes: []string{"ok", "[bad"}}); !errors.As(err, &exclude) || exclude.Index != 1 {
		t.Errorf("invalid glob: %v", err)
	}
	var onFile *ExcludesOnFileError
	if _, err := Hash(ctx, memo, Source{Path: file, Excludes: []string{"*.map"}}); !errors.As(err, &onFile) {
		t.Errorf("excludes on a file: %v", err)
	}
	var notRegular *NotRegularError
	if _, err := Hash(ctx, memo, Source{Path: fifo}); !errors.As(err, &notRegular) || notRegular.Type&fs.ModeNamedPipe == 0 {
		t.Errorf("a named pipe: %v", err)
	}
	var missing *SourceError
	if _, err := Hash(ctx, memo, Source{Path: filepath.Join(dir, "nope")}); !errors.As(err, &missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Hash(ctx, memo, Source{Path: filepath.Join(file, "x")}); !errors.As(err, &missing) || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("under a file: %v", err)
	}
	// Inside a tree, what the digest spec cannot record is a content error.
	must(t, os.Rename(fifo, filepath.Join(dir, "pipe")))
	var content *ContentError
	var typeErr *digest.TypeError
	if _, err := Hash(ctx, memo, Source{Path: dir}); !errors.As(err, &content) || !errors.As(err, &typeErr) {
		t.Errorf("a pipe in the tree: %v", err)
	}
}
