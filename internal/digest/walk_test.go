package digest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestHashListedRefusesSwappedFile: a file listed by lstat and then
// replaced — by a symlink to a secret, by another regular file, by a FIFO —
// is not read: HashListed fails with a *ChangedError naming what it found,
// and never blocks on the FIFO.
func TestHashListedRefusesSwappedFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root:$6$hash"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.txt")
	for _, tc := range []struct {
		name string
		swap func() error
		now  string
	}{
		{"symlink", func() error { return os.Symlink(secret, p) }, "a symlink"},
		{"another file", func() error { return os.WriteFile(p, []byte("other"), 0o644) }, "another file"},
		{"fifo", func() error { return syscall.Mkfifo(p, 0o644) }, "a named pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("listed"), 0o644); err != nil {
				t.Fatal(err)
			}
			info, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			// Moved away, not deleted: its inode stays in use, as with an
			// editor's or a build's rename-over.
			if err := os.Rename(p, p+"."+tc.name+".old"); err != nil {
				t.Fatal(err)
			}
			if err := tc.swap(); err != nil {
				t.Fatal(err)
			}
			_, _, err = HashListed(context.Background(), p, info)
			var ce *ChangedError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Now, tc.now) || !strings.Contains(err.Error(), "changed while it was being read") {
				t.Fatalf("want a ChangedError (%s), got %v", tc.now, err)
			}
			if f, err := OpenListed(p, info); err == nil {
				_ = f.Close() // opened only to show it should not have been; the test fails anyway
				t.Fatal("OpenListed opened the swapped file")
			}
		})
	}
	// The unchanged file is read, and a user-named symlink source is
	// followed by HashFile (as documented), but a FIFO never blocks it.
	must(t, os.Remove(p))
	must(t, os.WriteFile(p, []byte("listed"), 0o644))
	info, err := os.Lstat(p)
	must(t, err)
	if sum, _, err := HashListed(context.Background(), p, info); err != nil || sum != Bytes([]byte("listed")) {
		t.Fatalf("unchanged file: %v", err)
	}
	link := filepath.Join(dir, "link")
	must(t, os.Symlink(p, link))
	if sum, _, err := HashFile(context.Background(), link); err != nil || sum != Bytes([]byte("listed")) {
		t.Fatalf("a symlink named as the source is followed: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o644))
	if _, _, err := HashFile(context.Background(), fifo); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("HashFile of a FIFO: %v", err)
	}
}

// TestWalkNeverReadsThroughASwappedSymlink races a writer that keeps
// swapping a file of the tree for a symlink to a secret against walks of
// the tree: no walk ever reads the secret's bytes. (Without O_NOFOLLOW and
// the identity check, the swap lands between lstat and open in some walks.)
func TestWalkNeverReadsThroughASwappedSymlink(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "shadow")
	must(t, os.WriteFile(secret, []byte("root:$6$secret-hash"), 0o600))
	secretSum := Bytes([]byte("root:$6$secret-hash"))
	tree := filepath.Join(dir, "tree")
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("f%03d", i)] = "plain"
	}
	writeTree(t, tree, files)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		tmpLink, tmpFile := filepath.Join(dir, "l"), filepath.Join(dir, "f")
		for i := 0; !stop.Load(); i++ {
			target := filepath.Join(tree, fmt.Sprintf("f%03d", i%200))
			// Errors are ignored: a step that fails only leaves this round's
			// swap undone, and the race against the walks is the test.
			_ = os.Symlink(secret, tmpLink)
			_ = os.Rename(tmpLink, target) // now a symlink to the secret
			_ = os.WriteFile(tmpFile, []byte("plain"), 0o644)
			_ = os.Rename(tmpFile, target) // a regular file again
		}
	}()
	defer func() { stop.Store(true); <-done }()
	deadline := time.Now().Add(2 * time.Second)
	walks := 0
	for time.Now().Before(deadline) && walks < 300 {
		walks++
		_, err := Walk(context.Background(), tree, Options{}, func(ctx context.Context, abs, rel string, info fs.FileInfo) (Sum, int64, error) {
			sum, n, err := HashListed(ctx, abs, info)
			if err == nil && sum == secretSum {
				t.Errorf("walk %d read the secret through %s", walks, rel)
			}
			return sum, n, err
		})
		var ce *ChangedError
		var te *TypeError
		if err != nil && !errors.As(err, &ce) && !errors.As(err, &te) {
			t.Fatalf("walk %d: %v", walks, err)
		}
	}
}

// TestWalkStopsWorkersOnWalkError: when the walk itself fails (a FIFO in
// the tree, here), files already queued are not hashed — with a store's
// hasher that would upload them for a walk that has failed.
func TestWalkStopsWorkersOnWalkError(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a1": "1", "a2": "2", "a3": "3"})
	if err := syscall.Mkfifo(filepath.Join(dir, "zz-pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	cancelled := make(chan bool, 1)
	_, err := Walk(context.Background(), dir, Options{Workers: 1}, func(ctx context.Context, abs, _ string, info fs.FileInfo) (Sum, int64, error) {
		if calls.Add(1) == 1 {
			// Hold the only worker until the walk fails (or give up: the
			// walk then did not cancel us).
			select {
			case <-ctx.Done():
				cancelled <- true
				return Sum{}, 0, ctx.Err()
			case <-time.After(10 * time.Second):
				cancelled <- false
			}
		}
		return HashListed(ctx, abs, info)
	})
	var te *TypeError
	if !errors.As(err, &te) {
		t.Fatalf("want the FIFO's TypeError, got %v", err)
	}
	select {
	case ok := <-cancelled:
		if !ok {
			t.Fatal("the walk failed but its workers were not cancelled")
		}
	default: // the worker had not started when the walk failed
	}
	if n := calls.Load(); n > 1 {
		t.Fatalf("%d files were hashed; after the walk failed, queued files must not be", n)
	}
}

// TestCheckExcludeRefusesGlobsThatMatchNothing: an empty glob and globs
// with "." or ".." segments can never match a path of a tree.
func TestCheckExcludeRefusesGlobsThatMatchNothing(t *testing.T) {
	for _, bad := range []string{"", "../x", "./build", "a/../b", "dist/."} {
		if err := CheckExclude(bad); err == nil {
			t.Errorf("CheckExclude(%q) accepted a glob that matches nothing", bad)
		}
	}
	for _, good := range []string{"**/*.map", ".git", "node_modules", "build/**", "..hidden", "a.b/c"} {
		if err := CheckExclude(good); err != nil {
			t.Errorf("CheckExclude(%q): %v", good, err)
		}
	}
	if !Excluded("build/out/x.zip", []string{"build"}) || !Excluded("x.zip", []string{"*.zip"}) || Excluded("src/x.go", []string{"build"}) {
		t.Fatal("Excluded does not match a path or its parent directories as Walk does")
	}
}

// TestTypeNames: special files are described in words, not as mode bits.
func TestTypeNames(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		fs.ModeNamedPipe:                  "a named pipe (FIFO)",
		fs.ModeDevice | fs.ModeCharDevice: "a character device",
		fs.ModeDevice:                     "a block device",
		fs.ModeSocket:                     "a socket",
	} {
		if got := TypeName(m); got != want {
			t.Errorf("TypeName(%v) = %q, want %q", m, got, want)
		}
	}
}
