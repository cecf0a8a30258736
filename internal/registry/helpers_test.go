package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// The tests build their images by hand (package image's Assemble is being
// written beside this package): real gzip'd tars with their diff_ids, an
// OCI config and manifest, so that crane validates what was pushed.

// testImage is an image and the bytes of its own layers.
type testImage struct {
	*image.Image
	own map[int][]byte // by position in Image.Layers
}

// open gives the image's own layers, as Push wants them.
func (ti *testImage) open(_ context.Context, i int) (io.ReadCloser, error) {
	b, ok := ti.own[i]
	if !ok {
		return nil, fmt.Errorf("layer %d is not the image's own", i)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// layerBlob is a gzip'd tar holding one file, named and filled after seed.
func layerBlob(t testing.TB, seed string) (blob []byte, diffID digest.Sum) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	content := []byte(strings.Repeat(seed+"\n", 100))
	if err := tw.WriteHeader(&tar.Header{Name: "files/" + seed, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	zw := gzip.NewWriter(&gb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gb.Bytes(), digest.Bytes(tb.Bytes())
}

// buildImage builds an image of base (nil: from scratch) with one layer
// per seed, for platform p.
func buildImage(t testing.TB, base *image.Base, p image.Platform, seeds ...string) *testImage {
	t.Helper()
	cf := &v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, RootFS: v1.RootFS{Type: "layers"}}
	m := &v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	img := &image.Image{MediaType: string(types.OCIManifestSchema1), Platform: p}
	if base != nil {
		var err error
		if cf, err = v1.ParseConfigFile(bytes.NewReader(base.Config)); err != nil {
			t.Fatal(err)
		}
		bm, err := v1.ParseManifest(bytes.NewReader(base.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range bm.Layers {
			m.Layers = append(m.Layers, l)
			img.Layers = append(img.Layers, image.Descriptor{MediaType: string(l.MediaType), Digest: mustSum(t, l.Digest.String()), Size: l.Size})
			img.DiffIDs = append(img.DiffIDs, mustSum(t, cf.RootFS.DiffIDs[i].String()))
		}
	}
	ti := &testImage{Image: img, own: map[int][]byte{}}
	for _, s := range seeds {
		b, diffID := layerBlob(t, s)
		d := image.Descriptor{MediaType: string(types.OCILayer), Digest: digest.Bytes(b), Size: int64(len(b))}
		ti.own[len(img.Layers)] = b
		img.Layers = append(img.Layers, d)
		img.DiffIDs = append(img.DiffIDs, diffID)
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: diffID.Hex()})
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Digest: v1.Hash{Algorithm: "sha256", Hex: d.Digest.Hex()}, Size: d.Size})
	}
	cfg, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	img.Config, img.ConfigDigest = cfg, digest.Bytes(cfg)
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: v1.Hash{Algorithm: "sha256", Hex: img.ConfigDigest.Hex()}, Size: int64(len(cfg))}
	if img.Manifest, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	img.Digest = digest.Bytes(img.Manifest)
	img.Size = int64(len(img.Manifest) + len(cfg))
	for _, l := range img.Layers {
		img.Size += l.Size
	}
	return ti
}

// buildIndex builds the OCI index of imgs.
func buildIndex(t testing.TB, imgs ...*testImage) *image.Index {
	t.Helper()
	im := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	idx := &image.Index{MediaType: string(types.OCIImageIndex)}
	for _, ti := range imgs {
		d := image.Descriptor{MediaType: ti.MediaType, Digest: ti.Digest, Size: int64(len(ti.Manifest))}
		idx.Manifests = append(idx.Manifests, image.IndexEntry{Descriptor: d, Platform: ti.Platform})
		im.Manifests = append(im.Manifests, v1.Descriptor{
			MediaType: types.MediaType(d.MediaType), Digest: v1.Hash{Algorithm: "sha256", Hex: d.Digest.Hex()}, Size: d.Size,
			Platform: &v1.Platform{OS: ti.Platform.OS, Architecture: ti.Platform.Architecture, Variant: ti.Platform.Variant},
		})
	}
	var err error
	if idx.Manifest, err = json.Marshal(im); err != nil {
		t.Fatal(err)
	}
	idx.Digest = digest.Bytes(idx.Manifest)
	return idx
}

func mustSum(t testing.TB, s string) digest.Sum {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var linuxAMD64 = image.Platform{OS: "linux", Architecture: "amd64"}

// newClient is a Client with o, Docker's config isolated from the
// machine's (an empty DOCKER_CONFIG).
func newClient(t testing.TB, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noDockerConfig points DOCKER_CONFIG at an empty directory for the test.
func noDockerConfig(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
}

// crane runs crane, as a separate program, with args, and returns its
// standard output; a failure fails the test with crane's output.
func crane(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testserver.CranePath(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("crane %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// uploads are the blob uploads a counter saw: the POSTs that start one
// (a mount included) and the PUTs that commit one.
func uploads(c *testserver.Counter) (posts, commits []testserver.Call) {
	return c.Calls("POST", "/blobs/uploads/"), c.Calls("PUT", "/blobs/uploads/")
}
