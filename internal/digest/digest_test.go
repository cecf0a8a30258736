package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files under dir: name → content; a name ending in "*"
// is made executable, and content starting with "->" makes a symlink.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
}

// must fails the test on a setup step's error: a step that did not happen
// would make the assertion after it meaningless.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	m, err := HashTree(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Digest().String()
}

var sample = map[string]string{
	"index.html":          "<h1>hello</h1>\n",
	"assets/app.js":       "console.log(1)\n",
	"assets/img/logo.svg": "<svg/>",
	"bin/run.sh*":         "#!/bin/sh\necho run\n",
	"docs/read me.txt":    "spaces in the name\n",
	"docs/ünïcødé-名前.txt": "utf-8 name\n",
	"current":             "->assets/app.js",
	"empty":               "",
	"a b/c":               "sorted by bytes: ' ' before '/'",
	"a.txt":               "'.' before '/'",
	"a/b":                 "nested",
}

// The digests below are frozen by the spec: if one of these tests fails,
// the change would alter the digest of existing content for every user.
// They were computed by scripts/tree-digest.sh, an independent
// implementation with find, sort and sha256sum.
const (
	goldenSample = "sha256:50ff84eea4d2fb40936d31516f5a4b8718a7c1a42487dccab66795a2a47aab72"
	goldenEmpty  = "sha256:b5648c0853c22cab1714071e4b5bc92925e4ee507c1face9470353e63168e545"
)

func TestGoldenDigests(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sample)
	if got := treeDigest(t, dir); got != goldenSample {
		t.Errorf("tree digest = %s, want %s", got, goldenSample)
	}
	empty := t.TempDir()
	if got := treeDigest(t, empty); got != goldenEmpty {
		t.Errorf("empty tree digest = %s, want %s", got, goldenEmpty)
	}
	if got, want := Bytes([]byte("hello\n")).String(), "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; got != want {
		t.Errorf("content digest = %s, want %s", got, want)
	}
}

// TestGuideExample checks the worked example in the digest guide.
func TestGuideExample(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "<h1>hi</h1>\n", "bin/run.sh*": "#!/bin/sh\necho run\n", "current": "->index.html"})
	m, err := HashTree(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantListing := "immutable-tree-v1\n" +
		"exec a4e0317eafab5cf1bc4a0041c7c8aeb6ece56fe72e7b2b3017a8a6574614cd35 19 bin/run.sh\n" +
		"symlink 0eb547304658805aad788d320f10bf1f292797b5e6d745a3bf617584da017051 10 current\n" +
		"file 737e6daf77521604fc482aa91e8bed8c47f4815c624e61e49c45ecbb5832f708 12 index.html\n"
	if string(m.Encode()) != wantListing {
		t.Fatalf("listing:\n%s\nwant:\n%s", m.Encode(), wantListing)
	}
	if got := m.Digest().String(); got != "sha256:4556fab9e479e6218559f49b03b3d9a1c92b7ffa74bc7e4efefe4648480cd5b7" {
		t.Fatalf("digest %s", got)
	}
}

func TestFileDigestEqualsSha256sum(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.bin")
	data := make([]byte, 3*bufSize+17) // spans several buffers
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, size, err := HashFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum.Hex() != hex.EncodeToString(want[:]) || size != int64(len(data)) {
		t.Fatalf("HashFile = %s %d, want %x %d", sum, size, want, len(data))
	}
	if out, err := exec.Command("sha256sum", p).Output(); err == nil {
		if got := strings.Fields(string(out))[0]; got != sum.Hex() {
			t.Fatalf("sha256sum says %s, HashFile %s", got, sum.Hex())
		}
	}
}

// TestShellScriptReproducesDigest runs the script from the digest guide.
func TestShellScriptReproducesDigest(t *testing.T) {
	script, err := filepath.Abs("../../scripts/tree-digest.sh")
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{"sample": sample, "empty": {}, "deep": {"x/y/z/w.txt": "deep", "x/yy*": "exec"}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files)
			must(t, os.Mkdir(filepath.Join(dir, "empty-dir"), 0o755))
			out, err := exec.Command("sh", script, dir).CombinedOutput()
			if err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			if got, want := strings.TrimSpace(string(out)), treeDigest(t, dir); got != want {
				t.Fatalf("script says %s, provider %s", got, want)
			}
		})
	}
}

func TestInvariance(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, sample)
	want := treeDigest(t, base)

	t.Run("mtime", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, sample)
		old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		}))
		if got := treeDigest(t, dir); got != want {
			t.Fatalf("mtime changed the digest")
		}
	})
	t.Run("permission bits other than owner-exec", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, sample)
		must(t, os.Chmod(filepath.Join(dir, "index.html"), 0o664))
		must(t, os.Chmod(filepath.Join(dir, "empty"), 0o600))
		must(t, os.Chmod(filepath.Join(dir, "bin/run.sh"), 0o700))
		must(t, os.Chmod(filepath.Join(dir, "assets"), 0o700))
		if got := treeDigest(t, dir); got != want {
			t.Fatalf("permission bits changed the digest")
		}
	})
	t.Run("umask", func(t *testing.T) {
		old := syscall.Umask(0o077)
		defer syscall.Umask(old)
		dir := t.TempDir()
		// Written without the chmod writeTree does, so the umask applies.
		for name, content := range sample {
			if strings.HasPrefix(content, "->") {
				continue
			}
			name = strings.TrimSuffix(name, "*")
			p := filepath.Join(dir, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o777))
			mode := os.FileMode(0o666)
			if name == "bin/run.sh" {
				mode = 0o777
			}
			must(t, os.WriteFile(p, []byte(content), mode))
		}
		must(t, os.Symlink("assets/app.js", filepath.Join(dir, "current")))
		if got := treeDigest(t, dir); got != want {
			t.Fatalf("umask changed the digest")
		}
	})
	t.Run("owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chown needs root")
		}
		dir := t.TempDir()
		writeTree(t, dir, sample)
		must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 4242, 4242)
		}))
		if got := treeDigest(t, dir); got != want {
			t.Fatalf("owner changed the digest")
		}
	})
	t.Run("creation order and empty dirs", func(t *testing.T) {
		dir := t.TempDir()
		names := []string{"a/b", "a.txt", "a b/c", "index.html", "assets/img/logo.svg", "assets/app.js", "bin/run.sh*", "docs/read me.txt", "docs/ünïcødé-名前.txt", "empty", "current"}
		for i := len(names) - 1; i >= 0; i-- {
			writeTree(t, dir, map[string]string{names[i]: sample[names[i]]})
		}
		must(t, os.MkdirAll(filepath.Join(dir, "nothing/here"), 0o755))
		if got := treeDigest(t, dir); got != want {
			t.Fatalf("creation order or empty dirs changed the digest")
		}
	})
	t.Run("workers", func(t *testing.T) {
		m, err := HashTree(context.Background(), base, Options{Workers: 1})
		if err != nil || m.Digest().String() != want {
			t.Fatalf("one worker gives %v %v", m, err)
		}
	})
	t.Run("root given as a symlink", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "link")
		must(t, os.Symlink(base, link))
		if got := treeDigest(t, link); got != want {
			t.Fatalf("root symlink changed the digest")
		}
	})
}

func TestSensitivity(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, sample)
	want := treeDigest(t, base)
	for name, change := range map[string]func(dir string) error{
		"content": func(d string) error {
			return os.WriteFile(filepath.Join(d, "index.html"), []byte("<h1>hello!</h1>\n"), 0o644)
		},
		"rename":       func(d string) error { return os.Rename(filepath.Join(d, "index.html"), filepath.Join(d, "index.htm")) },
		"exec bit":     func(d string) error { return os.Chmod(filepath.Join(d, "index.html"), 0o744) },
		"exec bit off": func(d string) error { return os.Chmod(filepath.Join(d, "bin/run.sh"), 0o644) },
		"symlink target": func(d string) error {
			if err := os.Remove(filepath.Join(d, "current")); err != nil {
				return err
			}
			return os.Symlink("assets/img/logo.svg", filepath.Join(d, "current"))
		},
		"added empty": func(d string) error { return os.WriteFile(filepath.Join(d, "assets/.keep"), nil, 0o644) },
		"symlink to file": func(d string) error {
			if err := os.Remove(filepath.Join(d, "current")); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d, "current"), []byte("assets/app.js"), 0o644)
		},
		"moved to another dir": func(d string) error {
			return os.Rename(filepath.Join(d, "a/b"), filepath.Join(d, "assets/b"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, sample)
			must(t, change(dir))
			if got := treeDigest(t, dir); got == want {
				t.Fatalf("%s did not change the digest", name)
			}
		})
	}
}

func TestTreeDigestNeverEqualsFileDigestOfTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "x"})
	m, _ := HashTree(context.Background(), dir, Options{})
	if !strings.HasPrefix(string(m.Encode()), TreeHeader) {
		t.Fatal("listing has no header")
	}
	// The single file's own digest differs from the tree's.
	if m.Digest() == m.Entries[0].SHA256 {
		t.Fatal("tree digest equals its only file's digest")
	}
}

func TestRejectsUnencodableNames(t *testing.T) {
	for name, bad := range map[string]string{"newline": "a\nb", "invalid UTF-8": "bad\xff.txt"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, bad), nil, 0o644); err != nil {
				t.Skipf("this filesystem refuses the name: %v", err)
			}
			_, err := HashTree(context.Background(), dir, Options{})
			var ne *NameError
			if !errors.As(err, &ne) || ne.Path != bad {
				t.Fatalf("want a NameError for %q, got %v", bad, err)
			}
			// An exclude is the way out.
			if _, err := HashTree(context.Background(), dir, Options{Excludes: []string{"*"}}); err != nil {
				t.Fatalf("excluded name still fails: %v", err)
			}
		})
	}
}

func TestRejectsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ok.txt": "ok"})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := HashTree(context.Background(), dir, Options{})
	var te *TypeError
	if !errors.As(err, &te) || te.Path != "pipe" || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("want a TypeError for the FIFO, got %v", err)
	}
}

func TestExcludes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"keep.txt": "k", "app.js.map": "m", "sub/x.map": "m", "node_modules/dep/i.js": "d", ".git/HEAD": "h"})
	m, err := HashTree(context.Background(), dir, Options{Excludes: []string{"**/*.map", "node_modules", ".git"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 1 || m.Entries[0].Path != "keep.txt" {
		t.Fatalf("entries after excludes: %+v", m.Entries)
	}
	if err := CheckExclude("[unclosed"); err == nil {
		t.Fatal("an invalid glob was accepted")
	}
	if _, err := HashTree(context.Background(), dir, Options{Excludes: []string{"{a,"}}); err == nil {
		t.Fatal("HashTree accepted an invalid glob")
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	for i := range 200 {
		writeTree(t, dir, map[string]string{filepath.Join("d", strings.Repeat("x", i%7+1), string(rune('a'+i%26))+".txt"): strings.Repeat("y", 1000)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := HashTree(ctx, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestParseRoundTripAndDiff(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sample)
	m, _ := HashTree(context.Background(), dir, Options{})
	p, err := ParseListing(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest() != m.Digest() {
		t.Fatal("round trip changed the digest")
	}
	n := &Listing{Entries: append([]Entry(nil), m.Entries[1:]...)}
	n.Entries[0].SHA256 = Bytes([]byte("changed"))
	n.Entries = append(n.Entries, Entry{Path: "zzz", Kind: KindFile, SHA256: Bytes(nil)})
	lines, total := Diff(m, n, 10)
	if total != 3 || lines[0] != "- "+m.Entries[0].Path || lines[1] != "~ "+m.Entries[1].Path || lines[2] != "+ zzz" {
		t.Fatalf("diff = %v (%d)", lines, total)
	}
	if _, err := Parse("sha256:" + strings.Repeat("A", 64)); err == nil {
		t.Fatal("upper-case hex accepted")
	}
	if _, err := Parse("md5:00"); err == nil {
		t.Fatal("wrong prefix accepted")
	}
}

func BenchmarkHashTree(b *testing.B) {
	dir := b.TempDir()
	buf := make([]byte, 100<<10)
	for i := range 500 {
		p := filepath.Join(dir, string(rune('a'+i%26)), strings.Repeat("f", 1+i/26)+".bin")
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		buf[0] = byte(i)
		must(b, os.WriteFile(p, buf, 0o644))
	}
	b.SetBytes(500 * int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := HashTree(context.Background(), dir, Options{Workers: runtime.GOMAXPROCS(0)}); err != nil {
			b.Fatal(err)
		}
	}
}
