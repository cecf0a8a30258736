package export

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// testBase is a base image of one layer, whose blob a BaseOpener serves
// from memory as its registry would.
type testBase struct {
	*image.Base
	layer  []byte   // gzip
	opened []string // the repositories asked, in order
}

func newTestBase(t *testing.T) *testBase {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	body := []byte("base\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/base", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(body)
	_ = tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(tb.Bytes())
	_ = zw.Close()
	b := &testBase{layer: gz.Bytes()}
	b.Base = baseImage(t, "127.0.0.1:5000/base", b.descriptor(), digest.Bytes(tb.Bytes()))
	return b
}

// baseImage is the manifest and config of an image of one layer, as a
// registry serves them at repository.
func baseImage(t *testing.T, repository string, layer image.Descriptor, diffID digest.Sum) *image.Base {
	t.Helper()
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID.String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": image.MediaTypeManifest,
		"config": desc{image.MediaTypeConfig, digest.Bytes(config).String(), int64(len(config))},
		"layers": []desc{{layer.MediaType, layer.Digest.String(), layer.Size}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &image.Base{Ref: repository + "@" + digest.Bytes(manifest).String(), MediaType: image.MediaTypeManifest, Manifest: manifest, Config: config}
}

func (b *testBase) descriptor() image.Descriptor {
	return image.Descriptor{MediaType: image.MediaTypeLayerGzip, Digest: digest.Bytes(b.layer), Size: int64(len(b.layer))}
}

func (b *testBase) open(_ context.Context, repository string, d image.Descriptor) (io.ReadCloser, error) {
	b.opened = append(b.opened, repository)
	if d.Digest != digest.Bytes(b.layer) {
		return nil, fmt.Errorf("%s: blob unknown", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(b.layer)), nil
}

// storedImage stores files as a tree and an image of it at /app (on
// base, when given) with its record, as immutable_image does, and returns
// the manifest digest and the layer as WriteLayer encodes it.
func storedImage(t *testing.T, st *store.Store, files map[string]string, base *testBase) (digest.Sum, []byte) {
	t.Helper()
	ctx := context.Background()
	tree := stored(t, st, files)
	var layer bytes.Buffer
	l, err := image.WriteLayer(ctx, image.StoreSource(st), image.LayerSpec{Tree: tree.Digest, Path: "/app", Compression: image.Gzip}, &layer)
	if err != nil {
		t.Fatal(err)
	}
	var b *image.Base
	if base != nil {
		b = base.Base
	}
	img, err := image.Assemble(b, []image.Layer{l}, image.Config{Cmd: []string{"/app/bin/run.sh"}},
		image.Platform{OS: "linux", Architecture: "amd64"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := image.PutRecord(ctx, st, image.NewRecord(img, b, []image.Layer{l}), img.Manifest, img.Config); err != nil {
		t.Fatal(err)
	}
	return img.Digest, layer.Bytes()
}

// blobsAreTheirNames checks that every file under dir/blobs/sha256 hashes
// to its name, and returns their names.
func blobsAreTheirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		sum, _, err := digest.HashFile(context.Background(), filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil || sum.Hex() != e.Name() {
			t.Errorf("blob %s hashes to %s (%v)", e.Name(), sum.Hex(), err)
		}
		names = append(names, e.Name())
	}
	return names
}

func TestImageLayout(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	sum, layer := storedImage(t, st, site, nil)
	c, err := LoadImage(ctx, st, sum, OCILayout, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, st, c, OCILayout); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "img")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, c, OCILayout, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The tree written is the listing the plan knows.
	if m, err := hashTree(ctx, target); err != nil || m.Digest() != c.Listing.Digest() {
		t.Fatalf("the layout hashes to %v (%v), want the listing %s", m, err, c.Listing.Digest())
	}
	if got := blobsAreTheirNames(t, target); len(got) != 3 {
		t.Errorf("blobs %v, want the manifest, the config and one layer", got)
	}
	b, _ := os.ReadFile(filepath.Join(target, "blobs", "sha256", digest.Bytes(layer).Hex()))
	if !bytes.Equal(b, layer) {
		t.Error("the layer written is not the layer WriteLayer encodes")
	}
	if b, _ := os.ReadFile(filepath.Join(target, "oci-layout")); string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout holds %q", b)
	}
	var idx struct {
		SchemaVersion int
		Manifests     []struct {
			MediaType, Digest string
			Size              int64
		}
	}
	b, _ = os.ReadFile(filepath.Join(target, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || idx.SchemaVersion != 2 || len(idx.Manifests) != 1 ||
		idx.Manifests[0].Digest != sum.String() || idx.Manifests[0].MediaType != image.MediaTypeManifest {
		t.Errorf("index.json is %s (%v)", b, err)
	}
	// Drift and destroy work on the listing, as for a directory.
	if f, err := Inspect(ctx, target, OCILayout, c.Listing.Digest(), hashTree, noListing); err != nil || f.Status != Matches {
		t.Errorf("Inspect = %+v, %v", f, err)
	}
	if err := os.Remove(filepath.Join(target, "index.json")); err != nil {
		t.Fatal(err)
	}
	listing := func(ctx context.Context) (*digest.Listing, error) { return WrittenImageListing(ctx, st, sum, target) }
	if f, err := Inspect(ctx, target, OCILayout, c.Listing.Digest(), hashTree, listing); err != nil || f.Status != Differs || f.What != "index.json missing" {
		t.Errorf("Inspect after index.json went = %+v, %v", f, err)
	}
	kept, err := Remove(ctx, target, OCILayout, c)
	if err != nil || len(kept) != 0 {
		t.Fatalf("Remove kept %v (%v)", kept, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the layout is still there: %v", err)
	}
}

// A layout replaced by the next image's reuses the unchanged layer's
// blob from disk instead of encoding it again.
func TestImageLayoutUpdateReusesBlobs(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	base := newTestBase(t)
	v1, _ := storedImage(t, st, site, base)
	v2files := map[string]string{"index.html": "<h1>v2</h1>\n"}
	v2, _ := storedImage(t, st, v2files, base)
	old, err := LoadImage(ctx, st, v1, OCILayout, base.open)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "img")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	if _, err := w.Write(ctx, old, OCILayout, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(base.opened) != 1 || base.opened[0] != "127.0.0.1:5000/base" {
		t.Errorf("the base layer was read from %v, want once from 127.0.0.1:5000/base", base.opened)
	}
	c, err := LoadImage(ctx, st, v2, OCILayout, base.open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, c, OCILayout, target, old, nil); err != nil {
		t.Fatal(err)
	}
	// The base layer and oci-layout are the same; the manifest, config,
	// own layer and index.json (naming the manifest) are new.
	if w.Reused != 2 || w.Fetched != 4 || len(base.opened) != 1 {
		t.Errorf("reused %d, fetched %d, read the base %d times; want 2, 4, 1", w.Reused, w.Fetched, len(base.opened))
	}
	if m, err := hashTree(ctx, target); err != nil || m.Digest() != c.Listing.Digest() {
		t.Fatalf("the layout hashes to %v (%v), want the listing %s", m, err, c.Listing.Digest())
	}
	if got := blobsAreTheirNames(t, target); len(got) != 4 {
		t.Errorf("blobs %v, want v2's four only", got)
	}
}

func TestDockerArchive(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	base := newTestBase(t)
	sum, layer := storedImage(t, st, site, base)
	c, err := LoadImage(ctx, st, sum, DockerArchive, base.open)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, st, c, DockerArchive); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := FileSum(ctx, archive.NewRefs(st), st, c, DockerArchive); ok || err != nil {
		t.Errorf("FileSum of a docker-archive = %v, %v; want none before it is written", ok, err)
	}
	target := filepath.Join(t.TempDir(), "img.tar")
	w := &Writer{St: st, Refs: archive.NewRefs(st)}
	written, err := w.Write(ctx, c, DockerArchive, target, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := digest.HashFile(ctx, target); got != written {
		t.Errorf("Write returned %s, the file hashes to %s", written, got)
	}
	// Written twice, the same bytes.
	again := filepath.Join(t.TempDir(), "again.tar")
	if s, err := w.Write(ctx, c, DockerArchive, again, nil, nil); err != nil || s != written {
		t.Errorf("a second write hashes to %s (%v), the first to %s", s, err, written)
	}

	// GNU tar reads it: the layout's files and manifest.json.
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatalf("GNU tar is needed to read the archive back: %v", err)
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", target, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, out)
	}
	blobs := blobsAreTheirNames(t, dir)
	sort.Strings(blobs)
	if len(blobs) != 4 {
		t.Errorf("blobs %v, want the manifest, the config, the base's layer and the own one", blobs)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", digest.Bytes(layer).Hex()))
	if !bytes.Equal(b, layer) {
		t.Error("the layer written is not the layer WriteLayer encodes")
	}
	var mf []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	b, _ = os.ReadFile(filepath.Join(dir, "manifest.json"))
	want := []string{"blobs/sha256/" + digest.Bytes(base.layer).Hex(), "blobs/sha256/" + digest.Bytes(layer).Hex()}
	if err := json.Unmarshal(b, &mf); err != nil || len(mf) != 1 || strings.Join(mf[0].Layers, " ") != strings.Join(want, " ") ||
		!strings.HasPrefix(mf[0].Config, "blobs/sha256/") {
		t.Errorf("manifest.json is %s (%v), want layers %v", b, err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Errorf("no index.json: %v", err)
	}
	// Fixed headers: no owner, time or umask leaks in.
	f, _ := os.Open(target)
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(tarEpoch) || (h.Mode != 0o644 && h.Mode != 0o755) {
			t.Errorf("%s: header %+v", h.Name, h)
		}
	}
}

// crane (go-containerregistry's CLI, run as its own program) reads the
// docker-archive as `docker load` does: manifest.json, the config, each
// layer against its diff_id.
func TestDockerArchiveValidatesWithCrane(t *testing.T) {
	crane := testserver.CranePath(t)
	ctx := context.Background()
	st, _ := newStore(t)
	base := newTestBase(t)
	sum, _ := storedImage(t, st, site, base)
	c, err := LoadImage(ctx, st, sum, DockerArchive, base.open)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "img.tar")
	if _, err := (&Writer{St: st, Refs: archive.NewRefs(st)}).Write(ctx, c, DockerArchive, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(crane, "validate", "--tarball", target).CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("crane validate --tarball: %v\n%s", err, out)
	}
}

func TestImageExportRefusesWhatIsNotAnImage(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	tree := stored(t, st, site)
	var formatErr *FormatError
	if _, err := LoadImage(ctx, st, tree.Digest, OCILayout, nil); !errors.As(err, &formatErr) || !strings.Contains(err.Error(), `"oci-layout" and "docker-archive" export an image`) {
		t.Errorf("a tree: %v", err)
	}
	if err := Check(ctx, st, tree, DockerArchive); !errors.As(err, &formatErr) {
		t.Errorf("Check of a tree as docker-archive: %v", err)
	}
	file := digest.Bytes([]byte("just a file\n"))
	if _, err := st.PutBlob(ctx, file, strings.NewReader("just a file\n")); err != nil {
		t.Fatal(err)
	}
	var notImage *NotImageError
	if _, err := LoadImage(ctx, st, file, DockerArchive, nil); !errors.As(err, &notImage) {
		t.Errorf("a file: %v", err)
	}
	if _, err := LoadImage(ctx, st, digest.Bytes([]byte("nothing")), OCILayout, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("nothing: %v", err)
	}
	// An image on a base, with no registry to read the base from.
	sum, _ := storedImage(t, st, site, newTestBase(t))
	var baseErr *BaseError
	if _, err := LoadImage(ctx, st, sum, OCILayout, nil); !errors.As(err, &baseErr) || !strings.Contains(err.Error(), "127.0.0.1:5000/base@sha256:") {
		t.Errorf("an image on a base, without a registry: %v", err)
	}
}

// Nothing is written unless every byte is what the image's descriptors
// name: a layer whose tree was altered in the store, a base layer the
// registry serves wrong, a registry that cannot be reached.
func TestImageExportWritesNothingUnverified(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, root string, b *testBase) BaseOpener
		want  func(error) bool
	}{
		{"a stored file altered", func(t *testing.T, root string, b *testBase) BaseOpener {
			blob := filepath.Join(root, filepath.FromSlash(store.BlobKey(digest.Bytes([]byte(site["index.html"])))))
			_ = os.Chmod(blob, 0o644)
			if err := os.WriteFile(blob, []byte("<h1>v9</h1>\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return b.open
		}, func(err error) bool { return errors.As(err, new(*store.MismatchError)) }},
		{"a base layer served wrong", func(t *testing.T, root string, b *testBase) BaseOpener {
			return func(context.Context, string, image.Descriptor) (io.ReadCloser, error) {
				bad := append([]byte{}, b.layer...)
				bad[len(bad)/2] ^= 1
				return io.NopCloser(bytes.NewReader(bad)), nil
			}
		}, func(err error) bool { return errors.As(err, new(*BlobMismatchError)) }},
		{"a base layer served long", func(t *testing.T, root string, b *testBase) BaseOpener {
			return func(context.Context, string, image.Descriptor) (io.ReadCloser, error) {
				return io.NopCloser(io.MultiReader(bytes.NewReader(b.layer), strings.NewReader("more"))), nil
			}
		}, func(err error) bool { return errors.As(err, new(*BlobMismatchError)) }},
		{"the registry unreachable", func(t *testing.T, root string, b *testBase) BaseOpener {
			return func(context.Context, string, image.Descriptor) (io.ReadCloser, error) {
				return nil, errors.New("dial tcp 127.0.0.1:5000: connection refused")
			}
		}, func(err error) bool {
			var be *BaseError
			return errors.As(err, &be) && strings.Contains(err.Error(), "connection refused") && strings.Contains(err.Error(), "from scratch")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, root := newStore(t)
			b := newTestBase(t)
			sum, _ := storedImage(t, st, site, b)
			open := tc.spoil(t, root, b)
			for _, format := range []Format{OCILayout, DockerArchive} {
				c, err := LoadImage(ctx, st, sum, format, open)
				if err != nil {
					t.Fatal(err)
				}
				target := filepath.Join(t.TempDir(), "img")
				_, err = (&Writer{St: st, Refs: archive.NewRefs(st)}).Write(ctx, c, format, target, nil, nil)
				if !tc.want(err) {
					t.Errorf("%s: Write = %v", format, err)
				}
				if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 0 {
					t.Errorf("%s: something was written: %v", format, entries)
				}
			}
		})
	}
}

// The listing of a layout the export wrote is known without the store,
// from the manifest it wrote, as long as that is intact.
func TestWrittenImageListingFromDisk(t *testing.T) {
	ctx := context.Background()
	st, root := newStore(t)
	sum, _ := storedImage(t, st, site, nil)
	c, err := LoadImage(ctx, st, sum, OCILayout, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "img")
	if _, err := (&Writer{St: st, Refs: archive.NewRefs(st)}).Write(ctx, c, OCILayout, target, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	m, err := WrittenImageListing(ctx, st, sum, target)
	if err != nil || m.Digest() != c.Listing.Digest() {
		t.Fatalf("from disk: %v, %v", m, err)
	}
	manifest := filepath.Join(target, "blobs", "sha256", sum.Hex())
	if err := os.WriteFile(manifest, []byte(`{"schemaVersion":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WrittenImageListing(ctx, st, sum, target); err == nil {
		t.Fatal("a manifest changed on disk was trusted")
	}
}

func TestVerifiedReader(t *testing.T) {
	body := []byte("layer bytes")
	d := image.Descriptor{Digest: sha256.Sum256(body), Size: int64(len(body))}
	if b, err := io.ReadAll(Verified(io.NopCloser(bytes.NewReader(body)), d)); err != nil || !bytes.Equal(b, body) {
		t.Errorf("the right bytes: %q, %v", b, err)
	}
	short := d
	short.Size--
	for name, tc := range map[string]struct {
		d    image.Descriptor
		body []byte
	}{
		"other bytes": {d, []byte("layer bytez")},
		"truncated":   {d, body[:5]},
		"too long":    {short, body},
	} {
		if _, err := io.ReadAll(Verified(io.NopCloser(bytes.NewReader(tc.body)), tc.d)); !errors.As(err, new(*BlobMismatchError)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
