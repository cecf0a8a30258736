package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storetest"
)

func newBackend(t *testing.T) *Backend {
	b, err := New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Backend { return newBackend(t) },
		Tamper: func(t *testing.T, b store.Backend, key string, data []byte) {
			fb, ok := b.(*Backend)
			if !ok {
				t.Fatalf("backend is a %T, not a *Backend", b)
			}
			p := filepath.Join(fb.Root(), filepath.FromSlash(key))
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		LoseAnswer: func(t *testing.T, b store.Backend, key string) store.Backend {
			fb, ok := b.(*Backend)
			if !ok {
				t.Fatalf("backend is a %T, not a *Backend", b)
			}
			return loseLink(t, fb, key)
		},
	})
}

// loseLink returns a backend on b's directory whose first link(2) to key
// is made and then answered EEXIST, as over NFS when the reply to a link
// is lost and the client sends the request again.
func loseLink(t *testing.T, b *Backend, key string) *Backend {
	lb, err := New(b.Root())
	if err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(b.Root(), filepath.FromSlash(key))
	var lost atomic.Bool
	lb.link = func(oldname, newname string) error {
		err := os.Link(oldname, newname)
		if err == nil && newname == final && lost.CompareAndSwap(false, true) {
			return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EEXIST}
		}
		return err
	}
	return lb
}

func TestObjectsAreReadOnly(t *testing.T) {
	b := newBackend(t)
	if err := b.Create(context.Background(), "blobs/a", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(b.Root(), "blobs/a"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestNothingIsCreatedUntilTheFirstWrite(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	// Only what the reads leave behind matters here; what they return is
	// the conformance tests' business.
	_, _ = b.Exists(ctx, "blobs/a")
	_, _ = b.List(ctx, "releases/")
	if rc, err := b.Open(ctx, "trees/x"); err == nil {
		_ = rc.Close() // read nothing from it
	}
	if _, err := os.Stat(b.Root()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading created the store directory: %v", err)
	}
}

func TestUnwritableStore(t *testing.T) {
	// As root chmod cannot deny a write, so the store's directory is put
	// under a regular file instead.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := New(filepath.Join(file, "store"))
	err := b.Create(context.Background(), "blobs/a", strings.NewReader("a"))
	var we *WriteError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("want a WriteError naming the problem, got %v", err)
	}
}

func TestRejectsKeysOutsideTheStore(t *testing.T) {
	b := newBackend(t)
	for _, k := range []string{"../x", "/etc/passwd", "a//b", "a/./b", "", "a/.tmp-x"} {
		if err := b.Create(context.Background(), k, strings.NewReader("x")); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

// blockingReader yields some bytes, then blocks until the process is killed.
type blockingReader struct{ sent bool }

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		for i := range p {
			p[i] = 'x'
		}
		// Not checked: this runs in the child, and if the file is not
		// written the parent fails with "the writer never started".
		_ = os.WriteFile(os.Getenv("CRASH_READY"), nil, 0o644)
		return len(p), nil
	}
	select {}
}

// TestCrashMidWrite kills a process in the middle of writing an object and
// checks that the object is not visible and that a re-run completes.
func TestCrashMidWrite(t *testing.T) {
	if root := os.Getenv("CRASH_STORE"); root != "" {
		b, _ := New(root)
		err := b.Create(context.Background(), "blobs/crash", io.MultiReader(&blockingReader{}))
		t.Fatalf("Create returned instead of blocking until killed: %v", err)
	}
	root := filepath.Join(t.TempDir(), "store")
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidWrite$")
	cmd.Env = append(os.Environ(), "CRASH_STORE="+root, "CRASH_READY="+ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill() // best effort: the test fails anyway
			t.Fatal("the writer never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // its error is the kill just sent

	b, _ := New(root)
	ctx := context.Background()
	if ok, _ := b.Exists(ctx, "blobs/crash"); ok {
		t.Fatal("a killed write left a visible object")
	}
	if keys, _ := b.List(ctx, ""); len(keys) != 0 {
		t.Fatalf("a killed write left listed objects: %v", keys)
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, "blobs", ".tmp-*"))
	if len(leftovers) != 1 {
		t.Fatalf("expected the killed write's temp file, found %v", leftovers)
	}
	if err := b.Create(ctx, "blobs/crash", strings.NewReader("whole")); err != nil {
		t.Fatalf("re-run after the crash: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "blobs/crash"))
	if string(got) != "whole" {
		t.Fatalf("object holds %q", got)
	}
}

// TestNewRootIsPrivate: the store holds copies of the sources, secrets
// included, so the root it creates is readable by its owner only; the
// parents it creates are ordinary directories.
func TestNewRootIsPrivate(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "a", "b")
	b, _ := New(filepath.Join(parent, "store"))
	if err := b.Create(context.Background(), "blobs/secret", strings.NewReader("s3cr3t")); err != nil {
		t.Fatal(err)
	}
	umask := os.FileMode(syscall.Umask(0))
	syscall.Umask(int(umask))
	for dir, want := range map[string]os.FileMode{b.Root(): 0o700, parent: 0o755 &^ umask, filepath.Dir(parent): 0o755 &^ umask} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v; want %v", dir, fi.Mode().Perm(), want)
		}
	}
}

// TestExistingRootKeepsItsMode: a root someone made (shared on purpose,
// say) is never chmodded.
func TestExistingRootKeepsItsMode(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	b, _ := New(root)
	if err := b.Create(context.Background(), "blobs/a", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v; want the existing 0755", fi.Mode().Perm())
	}
}

// TestListUnderAFile: a prefix under a regular file lists nothing, as Open
// finds nothing there, instead of failing with ENOTDIR.
func TestListUnderAFile(t *testing.T) {
	b := newBackend(t)
	if err := b.Create(context.Background(), "releases/web/versions", strings.NewReader("in the way")); err != nil {
		t.Fatal(err)
	}
	keys, err := b.List(context.Background(), "releases/web/versions/")
	if err != nil || len(keys) != 0 {
		t.Fatalf("List under a file: %v %v", keys, err)
	}
}

// TestLeftoversOfAKilledWriterAreSwept: a temporary file a killed writer
// left in a store directory is removed by the next write there; a live
// process's is kept.
func TestLeftoversOfAKilledWriterAreSwept(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if err := b.Create(ctx, "blobs/sha256/ab/first", strings.NewReader("1")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(b.Root(), "blobs", "sha256", "cd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, fmt.Sprintf(".tmp-%d-123", cmd.Process.Pid))
	live := filepath.Join(dir, fmt.Sprintf(".tmp-%d-456", os.Getppid()))
	// A process id that looks dead here, but whose file is recent: maybe a
	// writer in another container sharing the store.
	young := filepath.Join(dir, fmt.Sprintf(".tmp-%d-789", cmd.Process.Pid))
	// A killed publish's staged file in a directory the next write does not
	// touch: a publish sweeps every blob directory.
	other := filepath.Join(b.Root(), "blobs", "sha256", "ef", fmt.Sprintf(".tmp-%d-321", cmd.Process.Pid))
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{dead, live, young, other} {
		if err := os.WriteFile(p, []byte("half a blob"), 0o600); err != nil {
			t.Fatal(err)
		}
		if p != young {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Create(ctx, "blobs/sha256/cd/second", strings.NewReader("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("a dead writer's leftover is still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a recent temporary file of an unknown process was removed: %v", err)
	}
	if _, err := b.Stage(ctx, "blobs/sha256/12/third", strings.NewReader("3")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a killed publish's leftover in another directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("a live process's temporary file was removed: %v", err)
	}
}

// TestDeleteManyFsyncsEachDirectoryOnce: a batch delete of many files in a
// few directories fsyncs each directory once, after its removals; a key
// that cannot be removed (a directory with files in it) gets its own
// error and the others go.
func TestDeleteManyFsyncsEachDirectoryOnce(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("blobs/sha256/%02x/%064x", i%2, i)
		if err := b.Create(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := b.Create(ctx, "trees/x/y", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, "trees/x") // a folder with a file in it: not removable
	var synced atomic.Int64
	old := syncDir
	syncDir = func(dir string) error { synced.Add(1); return old(dir) }
	t.Cleanup(func() { syncDir = old })
	errs := b.DeleteMany(ctx, keys)
	if n := synced.Load(); n != 2 {
		t.Errorf("%d directory fsyncs for 300 removals in 2 directories, want 2", n)
	}
	for i, err := range errs[:300] {
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
	}
	if errs[300] == nil {
		t.Fatal("removing a folder with a file in it succeeded")
	}
	if left, err := b.List(ctx, ""); err != nil || len(left) != 1 || left[0] != "trees/x/y" {
		t.Fatalf("left %v (%v), want trees/x/y", left, err)
	}
}

// Create makes each new key's entry durable, and the entries of the
// directories above it up to the root the first time only: a directory
// this process has made durable stays so (none is ever removed).
func TestCreateSyncsEachDirectoryChainOnce(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	for _, d := range []string{"gc/leases", "gc/condemned"} { // made beforehand: only Create's fsyncs are counted
		if err := os.MkdirAll(filepath.Join(b.Root(), d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var synced []string
	old := syncDir
	syncDir = func(dir string) error {
		rel, err := filepath.Rel(b.Root(), dir)
		if err != nil {
			t.Fatal(err)
		}
		synced = append(synced, filepath.ToSlash(rel))
		return old(dir)
	}
	t.Cleanup(func() { syncDir = old })
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"gc/leases/1", []string{"gc/leases", "gc", "."}},
		{"gc/leases/2", []string{"gc/leases"}},
		{"gc/condemned/1", []string{"gc/condemned", "gc"}},
		{"top", []string{"."}},
	} {
		synced = nil
		if err := b.Create(ctx, tc.key, strings.NewReader(tc.key)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(synced) != fmt.Sprint(tc.want) {
			t.Errorf("%s: synced %q, want %q", tc.key, synced, tc.want)
		}
	}
	// Another process (a new Backend) knows nothing durable yet.
	other, err := New(b.Root())
	if err != nil {
		t.Fatal(err)
	}
	synced = nil
	if err := other.Create(ctx, "gc/leases/3", strings.NewReader("3")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"gc/leases", "gc", "."}; fmt.Sprint(synced) != fmt.Sprint(want) {
		t.Errorf("another process: synced %q, want %q", synced, want)
	}
}

// TestDeleteErrorShowsTheKey: a key that cannot be deleted (an immutable
// file) whose name holds a newline and U+202E is printed escaped, in the
// message and in the path of the failed call, so that it forges no line.
func TestDeleteErrorShowsTheKey(t *testing.T) {
	b := newBackend(t)
	key := "signatures/x/y\nthe store is consistent\u202E"
	p := filepath.Join(b.Root(), filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
		t.Skipf("an undeletable file needs chattr +i (as root, on a filesystem with attributes): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", p).Run() }) // else the temporary directory stays
	for _, err := range []error{b.Delete(context.Background(), key), b.DeleteMany(context.Background(), []string{key})[0]} {
		msg := fmt.Sprint(err)
		if !strings.Contains(msg, `cannot delete "signatures/x/y\nthe store is consistent\u202E" from the store`) ||
			strings.ContainsAny(msg, "\n\u202E") || !errors.Is(err, syscall.EPERM) {
			t.Errorf("deleting an immutable file named with a newline: %q", msg)
		}
	}
}

// TestFullIsErrFull: a write into a store whose filesystem has no room
// left is a store.ErrFull (the collector knows no errno), and still says
// the filesystem's own error.
func TestFullIsErrFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk needs a small filesystem, and this test cannot mount one (it must run as root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	b, err := New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Create(context.Background(), "blobs/aa/big", strings.NewReader(strings.Repeat("x", 128<<10)))
	if !errors.Is(err, store.ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write larger than the filesystem: %v; want a store.ErrFull with ENOSPC", err)
	}
	if err := b.Create(context.Background(), "blobs/aa/small", strings.NewReader("x")); err != nil {
		t.Fatalf("a small write after it: %v (the failed write left its temporary file?)", err)
	}
}
