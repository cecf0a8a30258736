package gc

// The collector on a local disk that is full, read-only, or holds a key it
// cannot delete: it frees what it can, writes nothing when it has nothing
// to delete, and its messages name its own flags and the cause.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it; the test is skipped, saying why, where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	must(t, os.Mkdir(dir, 0o755))
	mountTmpfsAt(t, dir, size)
	return dir
}

// mountTmpfsAt mounts a tmpfs of size bytes on the directory dir.
func mountTmpfsAt(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk needs a small filesystem, and this test cannot mount one (it must run as root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// bindReadOnly mounts dir read-only on a new directory and returns it.
func bindReadOnly(t *testing.T, dir string) string {
	t.Helper()
	ro := filepath.Join(t.TempDir(), "ro")
	must(t, os.Mkdir(ro, 0o755))
	if out, err := exec.Command("mount", "--bind", "-o", "ro", dir, ro).CombinedOutput(); err != nil {
		t.Skipf("a read-only store needs a read-only bind mount, and this test cannot make one (it must run as root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", ro).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", ro, err, out)
		}
	})
	// Root ignores permissions, not a read-only mount: check it is one.
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("the bind mount %s is not read-only: %v", ro, err)
	}
	return ro
}

// fill writes a file into dir until its filesystem is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	must(t, err)
	defer func() { _ = f.Close() }()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// ageAll sets the time of every file under root.
func ageAll(t *testing.T, root string, to time.Time) {
	t.Helper()
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, to, to)
	}))
}

// releases stores n versions of release "app", each a blob of size bytes
// of its own, each with two leases as its publish left them.
func releases(t *testing.T, st *store.Store, n, size int) {
	t.Helper()
	for i := range n {
		data := bytes.Repeat([]byte{byte('a' + i)}, size)
		sum := putBlob(t, st, string(data))
		v := fmt.Sprintf("1.%d.0", i)
		_, err := release.WriteRecord(ctx, st.Backend(), &release.Record{Name: "app", Version: v, Artifacts: map[string]string{"bin": sum.String()}}, longAgo)
		must(t, err)
		for range 2 {
			must(t, st.Backend().Create(ctx, store.LeasesPrefix+store.NewObjectID(time.Now()),
				bytes.NewReader(store.LeaseBody([]string{store.BlobKey(sum), release.VersionKey("app", v)}))))
		}
	}
}

var fullDiskArgs = []string{"--keep-last", "1", "--keep-within", "0s", "--grace", "6h"}

// TestMainFreesAFullDisk: on a store whose filesystem is full, gc deletes
// the expired leases first (they need no marker), then writes its markers
// in the space they freed, and collects everything the dry run listed.
func TestMainFreesAFullDisk(t *testing.T) {
	root := filepath.Join(mountTmpfs(t, "2m"), "st")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	releases(t, st, 6, 200<<10)
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	fill(t, filepath.Dir(root))
	args := append([]string{"--store", "file://" + root}, fullDiskArgs...)
	code, dry, stderr := run(append(args, "--dry-run")...)
	if code != 0 || !strings.Contains(dry, "would delete 5 release versions") || !strings.Contains(dry, "18 expired leases") {
		t.Fatalf("dry run: exit %d\n%s%s", code, dry, stderr)
	}
	code, stdout, stderr := run(append(args, "-v")...)
	if code != 0 {
		t.Fatalf("gc on a full disk: exit %d\n%s%s", code, stdout, stderr)
	}
	if want := strings.ReplaceAll(strings.SplitN(dry, "\n", 4)[2], "would delete", "deleted"); !strings.Contains(stdout, want) {
		t.Fatalf("gc on a full disk deleted less than the dry run listed: want %q in\n%s", want, stdout)
	}
	for i := range 5 {
		if present(t, st, release.VersionKey("app", fmt.Sprintf("1.%d.0", i))) {
			t.Errorf("app@1.%d.0 is still there", i)
		}
	}
	if !present(t, st, release.VersionKey("app", "1.5.0")) {
		t.Error("app@1.5.0, the one kept, is gone")
	}
	checkConsistent(t, st)
}

// TestMainTooFullForAMarker: when not even a marker naming one key fits,
// nothing is deleted, and the message says how much to free and to run gc
// again, naming no provider setting; freeing that much is enough.
func TestMainTooFullForAMarker(t *testing.T) {
	root := filepath.Join(mountTmpfs(t, "1m"), "st")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	releases(t, st, 2, 100<<10)
	expire(t, st) // no lease to free space with
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	fill(t, filepath.Dir(root))
	args := append([]string{"--store", "file://" + root}, fullDiskArgs...)
	before := tree(t, root)
	code, stdout, stderr := run(args...)
	for _, want := range []string{"the filesystem holding the store file://" + root + " is full",
		"even a single key needs a marker (gc/condemned/) naming it and its tombstone: ", "Free at least 8 KiB on that filesystem",
		"then run gc again", "nothing was deleted", "no space left on device)"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("gc with no room for a marker: exit %d, want 1 and %q in\n%s%s", code, want, stdout, stderr)
		}
	}
	if strings.Contains(stderr, "provider's") || strings.Contains(stderr, "Terraform") {
		t.Errorf("the message names the provider's settings:\n%s", stderr)
	}
	// What changed is the root's time (the store's clock, read without
	// writing data), and the marker folder, empty.
	after := tree(t, root)
	for _, p := range []string{root, filepath.Join(root, "gc"), filepath.Join(root, "gc", "condemned")} {
		delete(before, p)
		delete(after, p)
	}
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed: %s, was %s", p, after[p], s)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(root, "gc", "condemned")); err != nil || len(entries) != 0 {
		t.Errorf("the marker folder holds %v (%v), want nothing", entries, err)
	}
	// Freeing what the message says is enough.
	filler := filepath.Join(filepath.Dir(root), "filler")
	must(t, os.Truncate(filler, mustSize(t, filler)-8<<10))
	code, stdout, stderr = run(args...)
	if code != 0 || !strings.Contains(stdout, "deleted 1 release version: app@1.0.0") {
		t.Fatalf("gc after freeing 8 KiB: exit %d\n%s%s", code, stdout, stderr)
	}
	checkConsistent(t, st)
}

func mustSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Size()
}

// TestMainNothingToDeleteWritesNothing: with nothing to delete, gc writes
// nothing, not even its markers' folder, and so also succeeds on a store
// it cannot write to.
func TestMainNothingToDeleteWritesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	releases(t, store.New(b), 2, 10) // young: the grace period keeps all
	before := tree(t, root)
	code, stdout, stderr := run("--store", "file://"+root)
	if code != 0 || !strings.Contains(stdout, "deleted 0 objects") {
		t.Fatalf("gc with nothing to delete: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := tree(t, root); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("gc with nothing to delete wrote to the store:\nbefore %v\nafter  %v", before, after)
	}
	ro := bindReadOnly(t, root)
	code, stdout, stderr = run("--store", "file://"+ro)
	if code != 0 || !strings.Contains(stdout, "deleted 0 objects") {
		t.Fatalf("gc with nothing to delete on a read-only store: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestMainReadOnlyStoreNamesFlags: on a read-only store with something to
// delete, the message says the filesystem is read-only and names --store,
// not the provider's settings.
func TestMainReadOnlyStoreNamesFlags(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	releases(t, store.New(b), 2, 10)
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	ro := bindReadOnly(t, root)
	code, stdout, stderr := run(append([]string{"--store", "file://" + ro}, fullDiskArgs...)...)
	if code != 1 || !strings.Contains(stderr, "read-only file system. The filesystem holding the store is mounted read-only: "+
		"mount it read-write, or check --store (or IMMUTABLE_STORE)") || strings.Contains(stderr, "provider's") || strings.Contains(stderr, "Terraform") {
		t.Fatalf("gc on a read-only store: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestMainUndeletableKey: one key of many that cannot be deleted (an
// immutable file) stops the collection with a message naming that key,
// the cause and what to check, and no setting of the provider or of S3.
func TestMainUndeletableKey(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	var stuck string
	for i := range 200 {
		sum := putBlob(t, st, fmt.Sprintf("garbage %d\n", i))
		if i == 100 {
			stuck = store.BlobKey(sum)
		}
	}
	releases(t, st, 1, 10)
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	p := filepath.Join(root, filepath.FromSlash(stuck))
	if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
		t.Skipf("an undeletable file needs chattr +i (as root, on a filesystem with attributes): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", p).Run() }) // else the temporary directory stays
	code, stdout, stderr := run(append([]string{"--store", "file://" + root}, fullDiskArgs...)...)
	for _, want := range []string{"1 of 200 deletes failed", "cannot delete " + stuck + " from the store file://" + root,
		"operation not permitted", "check their attributes (lsattr; an immutable or append-only one is removed with chattr -i"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("gc with an undeletable key: exit %d, want 1 and %q in\n%s%s", code, want, stdout, stderr)
		}
	}
	for _, not := range []string{"provider's", "Terraform", "--s3"} {
		if strings.Contains(stderr, not) {
			t.Errorf("gc with an undeletable key names %q:\n%s", not, stderr)
		}
	}
}

// TestTombstonesOfAFailedBatchGo: when a tombstone of a batch does not fit
// (here: the one of z@1.0.0, whose folder is a full filesystem), the
// tombstones the batch wrote before go too, as none of its records was
// deleted: no version is left both published and refused, and the report
// counts no tombstone. z@1.0.0 comes first in the batch (versions go
// oldest first, the last release's first); of the 15 other tombstones,
// written at once, some always land before its write fails.
func TestTombstonesOfAFailedBatchGo(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "z"}
	for _, name := range names {
		for _, v := range []string{"1.0.0", "1.1.0"} {
			sum := putBlob(t, st, name+"@"+v+"\n")
			_, err := release.WriteRecord(ctx, st.Backend(), &release.Record{Name: name, Version: v, Artifacts: map[string]string{"bin": sum.String()}}, longAgo)
			must(t, err)
		}
	}
	expire(t, st)
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	full := filepath.Join(root, filepath.FromSlash(path.Dir(release.CollectedKey("z", "1.0.0"))))
	must(t, os.MkdirAll(full, 0o755))
	mountTmpfsAt(t, full, "4k")
	fill(t, full) // its filler is no key of the store's layout: never read, never deleted
	var log strings.Builder
	p := policy
	p.KeepLast, p.KeepWithin, p.KeepChannelMoves, p.KeepYankedFor = 1, 0, 1, 0
	r, err := Collect(ctx, st, p, Options{AllowEmpty: true, Log: &log})
	var fe *FullError
	if !errors.As(err, &fe) {
		t.Fatalf("want a *FullError, got %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "condemning them in halves") {
		t.Errorf("the batch was not condemned in halves:\n%s", log.String())
	}
	for _, name := range names {
		if present(t, st, release.VersionKey(name, "1.0.0")) && present(t, st, release.CollectedKey(name, "1.0.0")) {
			t.Errorf("%s@1.0.0 is published and has a tombstone", name)
		}
	}
	if n := len(r.Versions); r.Tombstones != n {
		t.Errorf("the report counts %d tombstones for %d versions deleted\n%s", r.Tombstones, n, r)
	}
	checkConsistent(t, st)
}

// TestMainFullDiskInHalves: with no expired lease to free room, and room
// for a marker and one tombstone only, a batch of five versions is
// condemned in halves down to one at a time, each deleted record freeing
// room for the next; everything the dry run listed is deleted, and the
// store stays consistent.
func TestMainFullDiskInHalves(t *testing.T) {
	root := filepath.Join(mountTmpfs(t, "1m"), "st")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	releases(t, st, 6, 100)
	expire(t, st) // no lease to free space with
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	fill(t, filepath.Dir(root))
	filler := filepath.Join(filepath.Dir(root), "filler")
	must(t, os.Truncate(filler, mustSize(t, filler)-8<<10)) // a page for a marker, one for a tombstone
	args := append([]string{"--store", "file://" + root}, fullDiskArgs...)
	code, dry, stderr := run(append(args, "--dry-run")...)
	if code != 0 || !strings.Contains(dry, "would delete 5 release versions") || strings.Contains(dry, "expired lease") {
		t.Fatalf("dry run: exit %d\n%s%s", code, dry, stderr)
	}
	code, stdout, stderr := run(append(args, "-v")...)
	if code != 0 {
		t.Fatalf("gc on a full disk: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout+stderr, "the store is full: 5 keys do not fit; condemning them in halves") {
		t.Errorf("the batch was not condemned in halves:\n%s%s", stdout, stderr)
	}
	if want := strings.ReplaceAll(strings.SplitN(dry, "\n", 4)[2], "would delete", "deleted"); !strings.Contains(stdout, want) {
		t.Fatalf("gc on a full disk deleted less than the dry run listed: want %q in\n%s", want, stdout)
	}
	for i := range 5 {
		v := fmt.Sprintf("1.%d.0", i)
		if present(t, st, release.VersionKey("app", v)) || !present(t, st, release.CollectedKey("app", v)) {
			t.Errorf("app@%s is still there, or has no tombstone", v)
		}
	}
	if !present(t, st, release.VersionKey("app", "1.5.0")) {
		t.Error("app@1.5.0, the one kept, is gone")
	}
	checkConsistent(t, st)
}

// TestMainNoInodesLeft: on a filesystem with room but no inodes left, the
// message says so, how to see it (df -i) and how many files to delete,
// and gives the filesystem's block size as what a file takes.
func TestMainNoInodesLeft(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "few")
	must(t, os.Mkdir(dir, 0o755))
	mountTmpfsAt(t, dir, "1m,nr_inodes=64")
	root := filepath.Join(dir, "st")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	releases(t, st, 2, 10)
	expire(t, st) // no lease to free an inode with
	ageAll(t, root, time.Now().Add(-40*24*time.Hour))
	for i := 0; ; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("filler-%d", i)))
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		must(t, err)
		must(t, f.Close())
	}
	code, stdout, stderr := run(append([]string{"--store", "file://" + root}, fullDiskArgs...)...)
	for _, want := range []string{"the filesystem holding the store file://" + root + " has no inodes left (df -i shows them)",
		"each taking at least a block of the filesystem (" + Bytes(int64(os.Getpagesize())) + ")",
		"Delete at least 2 files on that filesystem", "then run gc again", "nothing was deleted"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("gc with no inodes left: exit %d, want 1 and %q in\n%s%s", code, want, stdout, stderr)
		}
	}
	if strings.Contains(stderr, "Free at least") {
		t.Errorf("the message asks for room, not inodes:\n%s", stderr)
	}
}
