package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// memSource holds trees and blobs in memory. Its Open does not verify,
// so that tests can see WriteLayer's own checks.
type memSource struct {
	trees map[digest.Sum]*digest.Listing
	blobs map[digest.Sum][]byte
}

func newMemSource() *memSource {
	return &memSource{trees: map[digest.Sum]*digest.Listing{}, blobs: map[digest.Sum][]byte{}}
}

// file adds a blob and returns its entry.
func (m *memSource) file(p string, k digest.Kind, content string) digest.Entry {
	sum := digest.Bytes([]byte(content))
	m.blobs[sum] = []byte(content)
	return digest.Entry{Path: p, Kind: k, SHA256: sum, Size: int64(len(content))}
}

// tree adds a listing of es (sorted here) and returns its digest.
func (m *memSource) tree(es ...digest.Entry) digest.Sum {
	l := &digest.Listing{Entries: es}
	l.Sort()
	sum := l.Digest()
	m.trees[sum] = l
	return sum
}

func (m *memSource) Listing(_ context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	if l, ok := m.trees[sum]; ok {
		return l, false, nil
	}
	if b, ok := m.blobs[sum]; ok {
		return fileListing(sum, int64(len(b))), true, nil
	}
	return nil, false, fmt.Errorf("%s: %w", sum, store.ErrNotFound)
}

func (m *memSource) Open(_ context.Context, sum digest.Sum) (io.ReadCloser, error) {
	b, ok := m.blobs[sum]
	if !ok {
		return nil, fmt.Errorf("%s: %w", sum, store.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// fixedTree is the golden tree: a file, an executable, a symlink and a
// nested directory.
func fixedTree(m *memSource) digest.Sum {
	return m.tree(
		m.file("index.html", digest.KindFile, "<h1>hi</h1>\n"),
		m.file("bin/run.sh", digest.KindExec, "#!/bin/sh\necho run\n"),
		m.file("current", digest.KindSymlink, "index.html"),
		m.file("a/b/c.txt", digest.KindFile, "c\n"),
	)
}

func writeLayer(t *testing.T, src Source, spec LayerSpec) (Layer, []byte) {
	t.Helper()
	var buf bytes.Buffer
	l, err := WriteLayer(context.Background(), src, spec, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return l, buf.Bytes()
}

// tarOf returns the tar inside a layer blob.
func tarOf(t *testing.T, spec LayerSpec, blob []byte) []byte {
	t.Helper()
	if spec.Compression == Uncompressed {
		return blob
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenLayer pins the encoding. A change of the diff_id is a change
// of immutable-layer-v1 (never allowed: a new encoding gets a new name); a
// change of the gzip digest alone is a change of Go's compress/flate,
// which the digest spec guide warns of (the blob then differs from the
// one a registry holds, the diff_id does not).
func TestGoldenLayer(t *testing.T) {
	m := newMemSource()
	spec := LayerSpec{Tree: fixedTree(m), Path: "/srv/www", UID: 1000, GID: 1000, Compression: Gzip}
	l, blob := writeLayer(t, m, spec)
	const (
		wantDiffID = "sha256:1365ef6af8a082d1bc513b35aa2579af34dedb676974cf70a9e72211bae02b67"
		wantDigest = "sha256:95c114406a4b68d9e0d5db89561e65e6a24088d3a6a19ee9a3d24defe0117155"
	)
	if l.DiffID.String() != wantDiffID || l.Digest.String() != wantDigest {
		t.Errorf("diff_id %s, digest %s; want %s, %s", l.DiffID, l.Digest, wantDiffID, wantDigest)
	}
	if l.Size != int64(len(blob)) || digest.Bytes(blob) != l.Digest || l.MediaType != MediaTypeLayerGzip {
		t.Errorf("descriptor %+v does not describe the %d bytes written", l.Descriptor, len(blob))
	}
	if got := digest.Bytes(tarOf(t, spec, blob)); got != l.DiffID {
		t.Errorf("diff_id %s is not the sha256 of the tar, %s", l.DiffID, got)
	}
	// The gzip header the spec pins: no name, mtime 0, XFL 4, OS 255.
	if want := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}; !bytes.Equal(blob[:10], want) {
		t.Errorf("gzip header % x, want % x", blob[:10], want)
	}
	// The digest spec guide's example, at /srv/www owned by root.
	ex := newMemSource()
	exTree := ex.tree(ex.file("index.html", digest.KindFile, "<h1>hi</h1>\n"), ex.file("bin/run.sh", digest.KindExec, "#!/bin/sh\necho run\n"), ex.file("current", digest.KindSymlink, "index.html"))
	g, _ := writeLayer(t, ex, LayerSpec{Tree: exTree, Path: "/srv/www", Compression: Gzip})
	if g.DiffID.String() != "sha256:f498033dea76ef4a0fa673f3d7ad25ed66b659de3d63aff8bbaac16e1215351b" ||
		g.Digest.String() != "sha256:52db205084e43e36b988604a3a53712eaeb185b0dab140054c8039a11d493309" || g.Size != 257 {
		t.Errorf("the guide's example: diff_id %s, digest %s, size %d; update the guide only with a new encoding", g.DiffID, g.Digest, g.Size)
	}
	spec.Compression = Uncompressed
	u, tb := writeLayer(t, m, spec)
	if u.DiffID != l.DiffID || u.Digest != u.DiffID || u.Size != int64(len(tb)) || u.MediaType != MediaTypeLayer {
		t.Errorf("uncompressed layer %+v; want digest = diff_id = %s", u, l.DiffID)
	}
}

// headers reads every header of a layer's tar.
func headers(t *testing.T, tarball []byte) []*tar.Header {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(tarball))
	var hs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

// TestLayerListedByGNUTar reads the golden layer with GNU tar, a reader
// independent of Go's: the entries, their order, owners, modes, sizes,
// times and symlink targets are what the spec says.
func TestLayerListedByGNUTar(t *testing.T) {
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("GNU tar is not installed: the layer cannot be checked by an independent reader")
	}
	m := newMemSource()
	spec := LayerSpec{Tree: fixedTree(m), Path: "/srv/www", UID: 1000, GID: 1000, Compression: Gzip}
	_, blob := writeLayer(t, m, spec)
	f := filepath.Join(t.TempDir(), "layer.tar.gz")
	if err := os.WriteFile(f, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gnuTar, "-tvv", "--numeric-owner", "-f", f)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	want := `drwxr-xr-x 1000/1000 0 1970-01-01 00:00 srv/www/
drwxr-xr-x 1000/1000 0 1970-01-01 00:00 srv/www/a/
drwxr-xr-x 1000/1000 0 1970-01-01 00:00 srv/www/a/b/
-rw-r--r-- 1000/1000 2 1970-01-01 00:00 srv/www/a/b/c.txt
drwxr-xr-x 1000/1000 0 1970-01-01 00:00 srv/www/bin/
-rwxr-xr-x 1000/1000 19 1970-01-01 00:00 srv/www/bin/run.sh
lrwxrwxrwx 1000/1000 0 1970-01-01 00:00 srv/www/current -> index.html
-rw-r--r-- 1000/1000 12 1970-01-01 00:00 srv/www/index.html
`
	if got := squeeze(string(out)); got != want {
		t.Errorf("GNU tar lists\n%s\nwant\n%s", got, want)
	}
	// Go's two zero blocks end it, and nothing pads it further.
	tb := tarOf(t, spec, blob)
	if len(tb)%512 != 0 || !bytes.Equal(tb[len(tb)-1024:], make([]byte, 1024)) {
		t.Errorf("the tar (%d bytes) does not end with two zero blocks", len(tb))
	}
	for _, h := range headers(t, tb) {
		if h.Format != tar.FormatUSTAR || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: format %v, uname %q, gname %q, mtime %v; want USTAR, empty names, the epoch", h.Name, h.Format, h.Uname, h.Gname, h.ModTime)
		}
	}
}

// squeeze collapses runs of spaces, which GNU tar uses to align columns.
func squeeze(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		b.WriteString(strings.Join(strings.Fields(line), " "))
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestLayerDeterministic writes a layer twice, once through a source that
// yields a byte per read: the same bytes, whatever the reads.
func TestLayerDeterministic(t *testing.T) {
	m := newMemSource()
	spec := LayerSpec{Tree: fixedTree(m), Path: "/app", Compression: Gzip}
	l1, b1 := writeLayer(t, m, spec)
	l2, b2 := writeLayer(t, oneByteSource{m}, spec)
	if !bytes.Equal(b1, b2) || l1 != l2 {
		t.Errorf("two writes differ: %+v, %+v", l1, l2)
	}
	d, err := DescribeLayer(context.Background(), m, spec)
	if err != nil || d != l1 {
		t.Errorf("DescribeLayer = %+v, %v; want %+v", d, err, l1)
	}
}

type oneByteSource struct{ *memSource }

func (o oneByteSource) Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	rc, err := o.memSource.Open(ctx, sum)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{iotestOneByte{rc}, rc}, nil
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestLayerNormalises: modes and owners come from the spec alone; the
// directories above the path get no entry (a base's stay as they are).
func TestLayerNormalises(t *testing.T) {
	m := newMemSource()
	spec := LayerSpec{Tree: fixedTree(m), Path: "/opt/app", UID: 65534, GID: 65533, FileMode: 0o600, DirMode: 0o750, Compression: Uncompressed}
	_, tb := writeLayer(t, m, spec)
	want := map[string]string{
		"opt/app/":           "5 0750 65534/65533",
		"opt/app/a/":         "5 0750 65534/65533",
		"opt/app/a/b/":       "5 0750 65534/65533",
		"opt/app/a/b/c.txt":  "0 0600 65534/65533",
		"opt/app/bin/":       "5 0750 65534/65533",
		"opt/app/bin/run.sh": "0 0600 65534/65533",
		"opt/app/current":    "2 0777 65534/65533",
		"opt/app/index.html": "0 0600 65534/65533",
	}
	hs := headers(t, tb)
	if len(hs) != len(want) {
		t.Errorf("%d entries, want %d", len(hs), len(want))
	}
	for _, h := range hs {
		if got := fmt.Sprintf("%c %04o %d/%d", h.Typeflag, h.Mode, h.Uid, h.Gid); got != want[h.Name] {
			t.Errorf("%s: %s, want %s", h.Name, got, want[h.Name])
		}
	}
}

// TestLayerAtRoot: a tree at "/" has no directory entry of its own.
func TestLayerAtRoot(t *testing.T) {
	m := newMemSource()
	spec := LayerSpec{Tree: m.tree(m.file("etc/motd", digest.KindFile, "hi\n")), Path: "/", Compression: Uncompressed}
	_, tb := writeLayer(t, m, spec)
	var names []string
	for _, h := range headers(t, tb) {
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "etc/ etc/motd" {
		t.Errorf("entries %s, want etc/ etc/motd", got)
	}
}

// TestLayerLongNames: a name too long for USTAR's 100+155 bytes, or not
// ASCII, goes in a PAX header as Go writes it; one that splits stays USTAR.
func TestLayerLongNames(t *testing.T) {
	m := newMemSource()
	long := strings.Repeat("x", 120)                                 // one component over 100: PAX
	split := strings.Repeat("d", 60) + "/" + strings.Repeat("f", 60) // USTAR prefix/name
	target := strings.Repeat("t/", 60)                               // a 120-byte link target: PAX
	spec := LayerSpec{Tree: m.tree(
		m.file(long, digest.KindFile, "long\n"),
		m.file(split, digest.KindFile, "split\n"),
		m.file("café", digest.KindFile, "utf8\n"),
		m.file("link", digest.KindSymlink, target),
	), Path: "/p", Compression: Gzip}
	_, blob := writeLayer(t, m, spec)
	want := map[string]tar.Format{
		"p/": tar.FormatUSTAR, "p/" + long: tar.FormatPAX, "p/" + strings.Repeat("d", 60) + "/": tar.FormatUSTAR,
		"p/" + split: tar.FormatUSTAR, "p/café": tar.FormatPAX, "p/link": tar.FormatPAX,
	}
	hs := headers(t, tarOf(t, spec, blob))
	if len(hs) != len(want) {
		t.Errorf("%d entries, want %d", len(hs), len(want))
	}
	for _, h := range hs {
		f, ok := want[h.Name]
		if !ok || h.Format != f {
			t.Errorf("%q: format %v, want %v (listed: %v)", h.Name, h.Format, f, ok)
		}
		if h.Name == "p/link" && h.Linkname != target {
			t.Errorf("link target %q, want %q", h.Linkname, target)
		}
		if h.Format == tar.FormatPAX && !h.ModTime.Equal(epoch) {
			t.Errorf("%q: mtime %v", h.Name, h.ModTime)
		}
	}
	// GNU tar reads the PAX names back too.
	if gnuTar, err := exec.LookPath("tar"); err == nil {
		f := filepath.Join(t.TempDir(), "layer.tar.gz")
		if err := os.WriteFile(f, blob, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(gnuTar, "-tf", f).CombinedOutput()
		if err != nil {
			t.Fatalf("tar -tf: %v\n%s", err, out)
		}
		for _, name := range []string{"p/" + long, "p/café", "p/" + split} {
			if !strings.Contains(string(out), name+"\n") {
				t.Errorf("GNU tar does not list %q:\n%s", name, out)
			}
		}
	}
}

// TestLayerSingleFile: a file lands at its own path below root-owned
// directories, 0644 unless FileMode says otherwise.
func TestLayerSingleFile(t *testing.T) {
	m := newMemSource()
	sum := m.file("", digest.KindFile, "#!/bin/sh\n").SHA256
	for _, tc := range []struct {
		mode int64
		want string
	}{{0, "0644"}, {0o755, "0755"}} {
		spec := LayerSpec{Tree: sum, Path: "/usr/local/bin/tool", UID: 7, GID: 8, FileMode: iofs.FileMode(tc.mode), Compression: Uncompressed}
		_, tb := writeLayer(t, m, spec)
		var got []string
		for _, h := range headers(t, tb) {
			got = append(got, fmt.Sprintf("%s %04o %d/%d %d", h.Name, h.Mode, h.Uid, h.Gid, h.Size))
		}
		want := "usr/local/bin/tool " + tc.want + " 7/8 10"
		if strings.Join(got, "|") != want {
			t.Errorf("entries\n%s\nwant\n%s", strings.Join(got, "|"), want)
		}
	}
	_, err := DescribeLayer(context.Background(), m, LayerSpec{Tree: sum, Path: "/", Compression: Gzip})
	if err == nil || !strings.Contains(err.Error(), "single file needs its own path") {
		t.Errorf("a file at / gave %v", err)
	}
}

// TestLayerVerifies: bytes that are not what the listing says (other
// content, shorter, longer) fail with the entry's name; so do names the
// layer cannot hold.
func TestLayerVerifies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"other", "<h1>ho</h1>\n", "hashes to"},
		{"shorter", "<h1>", "is 4 bytes long, not the 12"},
		{"longer", "<h1>hi</h1>\nmore", "is longer than the 12 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemSource()
			tree := fixedTree(m)
			m.blobs[digest.Bytes([]byte("<h1>hi</h1>\n"))] = []byte(tc.content)
			_, err := DescribeLayer(context.Background(), m, LayerSpec{Tree: tree, Path: "/srv", Compression: Gzip})
			var ce *ContentError
			if !errors.As(err, &ce) || ce.Name != "srv/index.html" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want a ContentError for srv/index.html saying %q", err, tc.want)
			}
		})
	}
	m := newMemSource()
	for _, es := range [][]digest.Entry{
		{m.file("../etc/passwd", digest.KindFile, "x")},
		{m.file("/etc/passwd", digest.KindFile, "x")},
		{m.file("a", digest.KindFile, "x"), m.file("a/b", digest.KindFile, "y")},
		{m.file("nul", digest.KindSymlink, "a\x00b")},
	} {
		tree := m.tree(es...)
		if _, err := DescribeLayer(context.Background(), m, LayerSpec{Tree: tree, Path: "/x", Compression: Gzip}); err == nil {
			t.Errorf("%v: no error", es)
		}
	}
}

func TestLayerSpecCheck(t *testing.T) {
	m := newMemSource()
	tree := fixedTree(m)
	for _, tc := range []struct {
		spec LayerSpec
		want string
	}{
		{LayerSpec{Path: "/a", UID: -1, Compression: Gzip}, "uid -1 is out of range"},
		{LayerSpec{Path: "/a", GID: MaxID + 1, Compression: Gzip}, "gid 2147483648 is out of range"},
		{LayerSpec{Path: "/a", FileMode: 0o4755, Compression: Gzip}, "file mode"},
		{LayerSpec{Path: "/a", DirMode: 0o1000, Compression: Gzip}, "directory mode"},
		{LayerSpec{Path: "/a", Compression: "zstd"}, `compression "zstd" is not known`},
		{LayerSpec{Path: "a", Compression: Gzip}, "is not absolute"},
	} {
		tc.spec.Tree = tree
		_, err := DescribeLayer(context.Background(), m, tc.spec)
		if tc.want == "" {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{"/", ""},
		{"/app", ""},
		{"/usr/local/bin/tool", ""},
		{"/a b/ü", ""},
		{"", "is empty"},
		{"app", `start it with "/", such as "/app"`},
		{"./app", "is not absolute"},
		{"/app/", `write it as "/app"`},
		{"//app", `write it as "/app"`},
		{"/a//b", `write it as "/a/b"`},
		{"/a/./b", `has a "." component`},
		{"/a/../b", `has a ".." component`},
		{"/..", `has a ".." component`},
		{"/a\nb", "NUL or newline"},
		{"/a\x00b", "NUL or newline"},
		{"/\xff", "not valid UTF-8"},
	} {
		err := CheckPath(tc.p)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckPath(%q) = %v, want %q", tc.p, err, tc.want)
		}
	}
	if err := CheckFilePath("/"); err == nil {
		t.Error(`CheckFilePath("/") passed`)
	}
}

// genSource is a tree of large files whose bytes are computed, not held:
// the heap a layer takes can be measured against the layer's size. It
// records the largest HeapInuse it sees while it is read.
type genSource struct {
	l       *digest.Listing
	sizes   map[digest.Sum]int64
	maxHeap uint64
}

func genBytes(seed byte, off int64, p []byte) {
	for i := range p {
		x := off + int64(i)
		p[i] = seed ^ byte(x) ^ byte(x>>11)*31
	}
}

type genReader struct {
	g         *genSource
	seed      byte
	off, size int64
	sampled   int64
}

func (r *genReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if int64(len(p)) > r.size-r.off {
		p = p[:r.size-r.off]
	}
	genBytes(r.seed, r.off, p)
	r.off += int64(len(p))
	if r.g != nil && r.off-r.sampled >= 16<<20 {
		r.sampled = r.off
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.g.maxHeap = max(r.g.maxHeap, ms.HeapInuse)
	}
	return len(p), nil
}

func newGenSource(files int, size int64) *genSource {
	g := &genSource{l: &digest.Listing{}, sizes: map[digest.Sum]int64{}}
	for i := range files {
		h := sha256.New()
		if _, err := io.Copy(h, &genReader{seed: byte(i), size: size}); err != nil {
			panic(err)
		}
		var sum digest.Sum
		h.Sum(sum[:0])
		g.l.Entries = append(g.l.Entries, digest.Entry{Path: fmt.Sprintf("f%02d", i), Kind: digest.KindFile, SHA256: sum, Size: size})
		g.sizes[sum] = int64(i)
	}
	return g
}

func (g *genSource) Listing(_ context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	if sum != g.l.Digest() {
		return nil, false, store.ErrNotFound
	}
	return g.l, false, nil
}

func (g *genSource) Open(_ context.Context, sum digest.Sum) (io.ReadCloser, error) {
	i, ok := g.sizes[sum]
	if !ok {
		return nil, store.ErrNotFound
	}
	return io.NopCloser(&genReader{g: g, seed: byte(i), size: g.l.Entries[i].Size}), nil
}

// TestLayerMemoryFlat streams a 256 MiB tree through gzip: the heap stays
// within a bound far below the layer's size (it would hold the layer if
// anything buffered it).
func TestLayerMemoryFlat(t *testing.T) {
	const files, size = 4, 64 << 20
	g := newGenSource(files, size)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var out countWriter
	l, err := WriteLayer(context.Background(), g, LayerSpec{Tree: g.l.Digest(), Path: "/big", Compression: Gzip}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size != out.n {
		t.Errorf("size %d, %d written", l.Size, out.n)
	}
	const bound = 32 << 20
	grew := int64(g.maxHeap) - int64(base)
	t.Logf("%d MiB layer, %d bytes gzipped; heap in use grew by at most %d KiB", files*size>>20, l.Size, grew>>10)
	if g.maxHeap == 0 || grew > bound {
		t.Errorf("heap in use grew by %d bytes while streaming %d: over the bound of %d", grew, files*size, bound)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestOpenerChecksPlannedLayer: the bytes Built.Opener streams must be
// the planned layer's, its diff_id included (a planned Layer may come
// from the machine's layer cache or the state: a wrong diff_id would be
// pushed in the config otherwise).
func TestOpenerChecksPlannedLayer(t *testing.T) {
	m := newMemSource()
	spec := LayerSpec{Tree: fixedTree(m), Path: "/srv/www", Compression: Gzip}
	l, err := DescribeLayer(context.Background(), m, spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mutate func(*Layer)
		fails  bool
	}{
		"as planned":    {func(*Layer) {}, false},
		"wrong digest":  {func(l *Layer) { l.Digest = digest.Bytes([]byte("x")) }, true},
		"wrong diff_id": {func(l *Layer) { l.DiffID = digest.Bytes([]byte("x")) }, true},
	} {
		want := l
		tc.mutate(&want)
		b := &Built{Image: &Image{Layers: []Descriptor{want.Descriptor}}, Layers: []Layer{want}}
		rc, err := b.Opener(m)(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		_ = rc.Close()
		if (err != nil) != tc.fails {
			t.Errorf("%s: %v", name, err)
		}
	}
}
