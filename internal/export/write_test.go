package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func TestNewTargetNeverOverwritten(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	for _, format := range []Format{Directory, Zip} {
		t.Run(string(format), func(t *testing.T) {
			for name, create := range map[string]func(string) error{
				"file":      func(p string) error { return os.WriteFile(p, []byte("mine"), 0o644) },
				"empty dir": func(p string) error { return os.Mkdir(p, 0o755) },
				"symlink":   func(p string) error { return os.Symlink("/", p) },
			} {
				target := filepath.Join(t.TempDir(), "t")
				if err := create(target); err != nil {
					t.Fatal(err)
				}
				before, _ := os.Lstat(target)
				_, err := w.Write(ctx, c, format, target, nil, nil)
				var exists *ExistsError
				if !errors.As(err, &exists) {
					t.Errorf("%s: Write over an existing %s = %v, want ExistsError", format, name, err)
				}
				after, _ := os.Lstat(target)
				if !os.SameFile(before, after) || before.Mode() != after.Mode() {
					t.Errorf("%s: the existing %s was replaced", format, name)
				}
				if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
					t.Errorf("%s: temporaries left beside the %s: %v", format, name, entries)
				}
			}
		})
	}
}

func TestReplaceSwapsAndReusesLocalFiles(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	v2files := map[string]string{}
	for k, v := range site {
		v2files[k] = v
	}
	v2files["index.html"] = "<h1>v2</h1>\n"
	delete(v2files, "deep/a/b/c.txt")
	v2 := stored(t, st, v2files)
	target := filepath.Join(t.TempDir(), "site")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, v1, Directory, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Lstat(target)
	// A file someone changed behind the export's back is not reused.
	if err := os.WriteFile(filepath.Join(target, "css", "site.css"), []byte("tampered{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, v2, Directory, target, v1, nil); err != nil {
		t.Fatal(err)
	}
	m, err := hashTree(ctx, target)
	if err != nil || m.Digest() != v2.Digest {
		t.Fatalf("after the swap the tree is %v (%v), want %s", m, err, v2.Digest)
	}
	// bin/run.sh is reused; index.html (new bytes) and css/site.css
	// (tampered) come from the store.
	if w.Reused != 1 || w.Fetched != 2 {
		t.Errorf("reused %d and fetched %d files, want 1 and 2", w.Reused, w.Fetched)
	}
	after, _ := os.Lstat(target)
	if os.SameFile(before, after) {
		t.Error("the directory was rewritten in place, not swapped")
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
		t.Errorf("the old content or temporaries are left: %v", entries)
	}
}

func TestCorruptBlobWritesNothing(t *testing.T) {
	ctx := context.Background()
	st, root := newStore(t)
	c := stored(t, st, site)
	// Edit a stored blob behind the store's back.
	blob := filepath.Join(root, filepath.FromSlash(store.BlobKey(digest.Bytes([]byte("<h1>v1</h1>\n")))))
	_ = os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, []byte("<h1>v9</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	for _, format := range []Format{Directory, Zip, TarGz} {
		target := filepath.Join(t.TempDir(), "out")
		_, err := w.Write(ctx, c, format, target, nil, nil)
		var mismatch *store.MismatchError
		if !errors.As(err, &mismatch) {
			t.Errorf("%s: Write from a corrupt blob = %v, want a MismatchError", format, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 0 {
			t.Errorf("%s: something was written: %v", format, entries)
		}
	}
}

func TestSweepsAKilledWritersTemporary(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	dir := t.TempDir()
	// A temporary tree of a process that no longer runs (pid 1 << 30 does not).
	dead := filepath.Join(dir, ".site.tmp-1073741824-123")
	writeTree(t, dead, map[string]string{"half.html": "<h1>v"})
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, c, Directory, filepath.Join(dir, "site"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a killed writer's temporary tree is left: %v", err)
	}
}

func TestCancelLeavesNothing(t *testing.T) {
	st, _ := newStore(t)
	c := stored(t, st, site)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target := filepath.Join(t.TempDir(), "site")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, c, Directory, target, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 0 {
		t.Errorf("a cancelled write left %v", entries)
	}
}

// The export's directory replaced by the user's file (or the reverse) is
// never swapped out and deleted by an update.
func TestUpdateRefusesWhatReplacedTheTarget(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	dir := t.TempDir()

	file := filepath.Join(dir, "index.html")
	if _, err := w.Write(ctx, v1, Zip, file, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	writeTree(t, file, map[string]string{"precious.txt": "mine"})
	var conflict *ConflictError
	if _, err := w.Write(ctx, v1, Zip, file, &Content{}, nil); !errors.As(err, &conflict) {
		t.Errorf("update of a zip the user replaced by a directory = %v, want a ConflictError", err)
	}
	if b, err := os.ReadFile(filepath.Join(file, "precious.txt")); err != nil || string(b) != "mine" {
		t.Errorf("the user's directory lost precious.txt: %q, %v", b, err)
	}

	tree := filepath.Join(dir, "site")
	if _, err := w.Write(ctx, v1, Directory, tree, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tree, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, v1, Directory, tree, v1, nil); !errors.As(err, &conflict) {
		t.Errorf("update of a directory the user replaced by a file = %v, want a ConflictError", err)
	}
	if b, err := os.ReadFile(tree); err != nil || string(b) != "mine" {
		t.Errorf("the user's file is %q, %v", b, err)
	}

	// Gone altogether: written as new.
	if err := os.Remove(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, v1, Directory, tree, v1, nil); err != nil {
		t.Errorf("update of an export that is gone: %v", err)
	}
}

// A file or archive that is not what the plan promised is never made
// visible.
func TestExpectedSumCheckedBeforeTheRename(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	v1 := stored(t, st, site)
	wrong := digest.Bytes([]byte("not the zip"))
	w := &Writer{St: st, Refs: archive.NewRefs(st), Expect: &wrong}
	target := filepath.Join(t.TempDir(), "site.zip")
	var mismatch *MismatchError
	if _, err := w.Write(ctx, v1, Zip, target, nil, nil); !errors.As(err, &mismatch) || mismatch.Want != wrong {
		t.Fatalf("Write with a wrong expected sum = %v, want a MismatchError", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 0 {
		t.Errorf("a refused write left %v", entries)
	}
}

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
