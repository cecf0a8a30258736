package statcache

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

var ctx = context.Background()

// must fails the test at once when a setup step fails.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree writes files whose mtime is an hour old, as in a normal checkout.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for name, c := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		must(t, os.Chtimes(p, old, old))
	}
	return dir
}

func hashed(t *testing.T, c *Cache, dir string) string {
	t.Helper()
	m, err := HashTree(ctx, c, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := digest.HashTree(ctx, dir, digest.Options{})
	if m.Digest() != want.Digest() {
		t.Fatalf("cached digest %s differs from the uncached %s", m.Digest(), want.Digest())
	}
	return m.Digest().String()
}

func hits(t *testing.T, c *Cache, dir string) (int, int) {
	t.Helper()
	resolved, _ := filepath.EvalSymlinks(dir)
	tb := c.Load(resolved)
	m, err := digest.Walk(ctx, resolved, digest.Options{}, tb.hashFile)
	if err != nil || m == nil {
		t.Fatal(err)
	}
	return tb.Hits, tb.Misses
}

func TestWarmReplanReadsNothing(t *testing.T) {
	c := New(t.TempDir())
	dir := tree(t, map[string]string{"a": "1", "b/c": "2", "b/d": "3"})
	hashed(t, c, dir)
	if h, m := hits(t, c, dir); h != 3 || m != 0 {
		t.Fatalf("warm walk: %d hits, %d misses; want 3 and 0", h, m)
	}
}

func TestChangedFilesAreReadAgain(t *testing.T) {
	c := New(t.TempDir())
	dir := tree(t, map[string]string{"a": "1111", "b": "2222"})
	before := hashed(t, c, dir)
	// Same size, mtime put back: the inode's ctime still moves.
	p := filepath.Join(dir, "a")
	fi, _ := os.Stat(p)
	must(t, os.WriteFile(p, []byte("9999"), 0o644))
	must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	if after := hashed(t, c, dir); after == before {
		t.Fatal("a changed file kept its cached digest")
	}
	// Replaced by another file (new inode), same size and times.
	tmp := filepath.Join(dir, "b.new")
	must(t, os.WriteFile(tmp, []byte("7777"), 0o644))
	must(t, os.Chtimes(tmp, fi.ModTime(), fi.ModTime()))
	must(t, os.Rename(tmp, filepath.Join(dir, "b")))
	hashed(t, c, dir)
}

// TestRacyEntriesAreNotTrusted: a file modified within RacyWindow of being
// hashed could change again without its mtime moving; its entry is never
// used, as git re-checks racily clean index entries.
func TestRacyEntriesAreNotTrusted(t *testing.T) {
	tb := &Table{old: map[string]entry{}, new: map[string]entry{}}
	st := Stat{Size: 1, MtimeNS: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), Ino: 7}
	mtime := time.Unix(0, st.MtimeNS)
	for _, c := range []struct {
		hashedAfter time.Duration
		trusted     bool
	}{{0, false}, {time.Second, false}, {RacyWindow, false}, {RacyWindow + time.Millisecond, true}, {time.Hour, true}} {
		tb.Record("f", st, digest.Bytes([]byte("x")), mtime.Add(c.hashedAfter))
		tb.old, tb.new = tb.new, map[string]entry{}
		if _, ok := tb.Lookup("f", st); ok != c.trusted {
			t.Errorf("hashed %v after its mtime: trusted=%v, want %v", c.hashedAfter, ok, c.trusted)
		}
	}
	// And a fresh file, end to end: re-read on every walk.
	c := New(t.TempDir())
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "fresh"), []byte("x"), 0o644))
	hashed(t, c, dir)
	if h, m := hits(t, c, dir); h != 0 || m != 1 {
		t.Fatalf("a fresh file: %d hits, %d misses; want 0 and 1", h, m)
	}
}

func TestCorruptOrForeignCacheIsIgnoredAndRebuilt(t *testing.T) {
	dir := tree(t, map[string]string{"a": "1"})
	resolved, _ := filepath.EvalSymlinks(dir)
	for name, content := range map[string][]byte{
		"garbage":    []byte("not a cache at all"),
		"truncated":  []byte(magic + "\x00\x01"),
		"other kind": []byte("immutable-statcache-v1\n"),
		"short root": []byte(magic + "\xff\xff\x00\x00/x"),
	} {
		t.Run(name, func(t *testing.T) {
			c := New(t.TempDir())
			must(t, os.MkdirAll(c.Dir(), 0o700))
			must(t, os.WriteFile(c.fileFor(resolved), content, 0o600))
			hashed(t, c, dir)
			raw, _ := os.ReadFile(c.fileFor(resolved))
			if !strings.HasPrefix(string(raw), magic) {
				t.Fatal("the cache was not rebuilt")
			}
			if h, _ := hits(t, c, dir); h != 1 {
				t.Fatal("the rebuilt cache is not used")
			}
		})
	}
	t.Run("another tree's cache", func(t *testing.T) {
		c := New(t.TempDir())
		other := tree(t, map[string]string{"a": "2"})
		hashed(t, c, other)
		otherReal, _ := filepath.EvalSymlinks(other)
		raw, _ := os.ReadFile(c.fileFor(otherReal))
		must(t, os.WriteFile(c.fileFor(resolved), raw, 0o600)) // same name, foreign root
		hashed(t, c, dir)
	})
}

// TestStaleCacheNeverReachesTheStore: even a cache that lies (here,
// poisoned on purpose) only misleads a plan; storing re-hashes every file,
// so the provider's apply sees the difference and refuses.
func TestStaleCacheNeverReachesTheStore(t *testing.T) {
	c := New(t.TempDir())
	dir := tree(t, map[string]string{"a": "true content"})
	resolved, _ := filepath.EvalSymlinks(dir)
	hashed(t, c, dir)
	tb := c.Load(resolved)
	for k, e := range tb.old {
		e.Sum = digest.Bytes([]byte("a lie"))
		tb.new[k] = e
	}
	tb.changed = true
	if err := tb.Save(); err != nil {
		t.Fatal(err)
	}
	planned, _ := HashTree(ctx, c, dir, digest.Options{})
	truth, _ := digest.HashTree(ctx, dir, digest.Options{})
	if planned.Digest() == truth.Digest() {
		t.Fatal("the poisoned cache was not used; the test proves nothing")
	}
	b, _ := filestore.New(t.TempDir())
	stored, err := store.New(b).PutDir(ctx, dir, digest.Options{})
	if err != nil || stored.Digest() != truth.Digest() {
		t.Fatalf("stored %v (%v), want the true content", stored.Digest(), err)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv(EnvDisable, "off")
	if Default() != nil {
		t.Fatal("IMMUTABLE_STAT_CACHE=off did not disable the cache")
	}
	t.Setenv(EnvDisable, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if c := Default(); c == nil || !strings.HasPrefix(c.Dir(), os.Getenv("XDG_CACHE_HOME")) {
		t.Fatalf("the cache is not under XDG_CACHE_HOME: %v", c)
	}
	t.Setenv(EnvDir, "/somewhere/else")
	if c := Default(); c == nil || c.Dir() != "/somewhere/else" {
		t.Fatalf("IMMUTABLE_CACHE_DIR is not honoured: %v", c)
	}
}

func TestSingleFile(t *testing.T) {
	c := New(t.TempDir())
	dir := tree(t, map[string]string{"f": "file content"})
	p := filepath.Join(dir, "f")
	sum, size, err := HashFile(ctx, c, p)
	if err != nil || sum != digest.Bytes([]byte("file content")) || size != 12 {
		t.Fatalf("HashFile = %s %d %v", sum, size, err)
	}
	resolved, _ := filepath.EvalSymlinks(p)
	tb := c.Load(resolved)
	info, _ := os.Stat(resolved)
	if _, _, err := tb.hashFile(ctx, resolved, "", info); err != nil || tb.Hits != 1 {
		t.Fatalf("second hash of a file: hits %d, %v", tb.Hits, err)
	}
}

func TestMemoWalksEachTreeOnce(t *testing.T) {
	dir := tree(t, map[string]string{"a": "1", "b": "2"})
	m := NewMemo(New(t.TempDir()))
	var wg sync.WaitGroup
	digests := make([]string, 200)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			man, err := m.Tree(ctx, dir, digest.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			digests[i] = man.Digest().String()
		}()
	}
	wg.Wait()
	if m.Walks != 1 {
		t.Fatalf("200 resources over one tree walked it %d times", m.Walks)
	}
	for _, d := range digests {
		if d != digests[0] {
			t.Fatal("callers got different digests")
		}
	}
	if _, err := m.Tree(ctx, dir, digest.Options{Excludes: []string{"a"}}); err != nil || m.Walks != 2 {
		t.Fatalf("other excludes are another walk: %d, %v", m.Walks, err)
	}
	if _, err := m.Tree(ctx, filepath.Join(dir, "missing"), digest.Options{}); err == nil {
		t.Fatal("a missing tree gave no error")
	}
}

func TestEncodingRoundTripAndTruncation(t *testing.T) {
	in := map[string]entry{
		"a/b.txt": {Stat: Stat{Size: 1, MtimeNS: 2, CtimeNS: 3, Ino: 4, Dev: 5, Mode: 0o644}, Sum: digest.Bytes([]byte("x")), HashedAt: 6},
		"ü n":     {Stat: Stat{Size: 7}, HashedAt: 8},
	}
	raw := encode("/root", in)
	out, ok := decode(raw, "/root")
	if !ok || len(out) != 2 || out["a/b.txt"] != in["a/b.txt"] || out["ü n"] != in["ü n"] {
		t.Fatalf("round trip: %v %v", out, ok)
	}
	if _, ok := decode(raw, "/other"); ok {
		t.Fatal("another root's cache was accepted")
	}
	for cut := len(magic); cut < len(raw); cut += 7 {
		if _, ok := decode(raw[:cut], "/root"); ok && cut != len(magic)+4+len("/root") {
			t.Fatalf("a file cut at %d of %d bytes was accepted", cut, len(raw))
		}
	}
}
