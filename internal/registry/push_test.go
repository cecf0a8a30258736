package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestPushThenCraneValidates: an image pushed anonymously by digest is one
// crane (run as its own program) reads back byte for byte and validates,
// layers and diff_ids included; Resolve reads it back too.
func TestPushThenCraneValidates(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	img := buildImage(t, nil, linuxAMD64, "a", "b")
	c := newClient(t, Options{})
	repo := srv.Host + "/team/app"
	stats, err := c.Push(context.Background(), repo, img.Image, nil, img.open)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (PushStats{Uploaded: 3}) {
		t.Errorf("stats %+v, want 3 uploaded (2 layers and the config)", stats)
	}
	ref := repo + "@" + img.Digest.String()
	crane(t, "validate", "--remote", ref)
	if got := crane(t, "manifest", ref); got != string(img.Manifest) {
		t.Errorf("crane manifest:\n%s\nwant\n%s", got, img.Manifest)
	}
	r, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != img.Digest || r.MediaType != img.MediaType || string(r.Manifest) != string(img.Manifest) || r.Platforms != nil {
		t.Errorf("Resolve: %+v", r)
	}
	if r.Repository != repo {
		t.Errorf("Resolve: repository %q, want %q", r.Repository, repo)
	}
}

// TestPushAsksBeforeUploading: pushing an image whose blobs are all there
// uploads none (a HEAD each, one manifest PUT); pushing it with one layer
// changed uploads that layer and the new config, nothing else.
func TestPushAsksBeforeUploading(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	repo := count.Host() + "/app"
	img := buildImage(t, nil, linuxAMD64, "a", "b", "c")
	if _, err := newClient(t, Options{}).Push(context.Background(), repo, img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}

	count.Reset()
	stats, err := newClient(t, Options{}).Push(context.Background(), repo, img.Image, nil, img.open)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (PushStats{Existing: 4}) {
		t.Errorf("again: stats %+v, want 4 existing", stats)
	}
	posts, commits := uploads(count)
	if len(posts)+len(commits)+len(count.Calls("PATCH", "")) != 0 {
		t.Errorf("again: %d upload POSTs, %d commits, %d PATCHes; want none", len(posts), len(commits), len(count.Calls("PATCH", "")))
	}
	if n := len(count.Calls("HEAD", "/blobs/")); n != 4 {
		t.Errorf("again: %d blob HEADs, want 4", n)
	}
	if n := len(count.Calls("PUT", "/manifests/")); n != 1 {
		t.Errorf("again: %d manifest PUTs, want 1", n)
	}

	changed := buildImage(t, nil, linuxAMD64, "a", "B", "c")
	count.Reset()
	stats, err = newClient(t, Options{}).Push(context.Background(), repo, changed.Image, nil, changed.open)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (PushStats{Uploaded: 2, Existing: 2}) {
		t.Errorf("changed: stats %+v, want 2 uploaded (a layer, the config), 2 existing", stats)
	}
	_, commits = uploads(count)
	var got []string
	for _, c := range commits {
		got = append(got, c.Query)
	}
	if len(commits) != 2 || !strings.Contains(strings.Join(got, " "), changed.Layers[1].Digest.Hex()) ||
		!strings.Contains(strings.Join(got, " "), changed.ConfigDigest.Hex()) {
		t.Errorf("changed: commits %v, want layer 1 (%s) and the config (%s)", got, changed.Layers[1].Digest, changed.ConfigDigest)
	}
	crane(t, "validate", "--remote", repo+"@"+changed.Digest.String())
}

// pushBase pushes a two-layer base image to repo and reads it back with
// Base.
func pushBase(t *testing.T, repo string) *testImage {
	t.Helper()
	base := buildImage(t, nil, linuxAMD64, "base-1", "base-2")
	if _, err := newClient(t, Options{}).Push(context.Background(), repo, base.Image, nil, base.open); err != nil {
		t.Fatal(err)
	}
	return base
}

// TestPushMountsBaseLayers: on the base's registry, the base's layers are
// mounted from its repository, never uploaded.
func TestPushMountsBaseLayers(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	baseImg := pushBase(t, count.Host()+"/library/base")
	c := newClient(t, Options{})
	base, err := c.Base(context.Background(), count.Host()+"/library/base@"+baseImg.Digest.String(), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, base, linuxAMD64, "own")
	count.Reset()
	stats, err := c.Push(context.Background(), count.Host()+"/app", img.Image, base, img.open)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (PushStats{Uploaded: 2, Mounted: 2}) {
		t.Errorf("stats %+v, want 2 mounted (the base's layers), 2 uploaded (own layer, config)", stats)
	}
	posts, commits := uploads(count)
	mounts := 0
	for _, p := range posts {
		if strings.Contains(p.Query, "mount=") && strings.Contains(p.Query, "from=library%2Fbase") {
			mounts++
		}
	}
	if mounts != 2 || len(commits) != 2 {
		t.Errorf("%d mounts from library/base, %d commits; want 2 and 2: %v", mounts, len(commits), posts)
	}
	if n := len(count.Calls("GET", "/blobs/")); n != 0 {
		t.Errorf("%d blob GETs: a mount reads nothing", n)
	}
	crane(t, "validate", "--remote", count.Host()+"/app@"+img.Digest.String())
}

// TestPushCopiesBaseAcrossRegistries: a base on another registry is
// copied, streaming each base layer from it (verified) to the target.
func TestPushCopiesBaseAcrossRegistries(t *testing.T) {
	noDockerConfig(t)
	from := testserver.StartRegistry(t, testserver.RegistryOptions{})
	to := testserver.StartRegistry(t, testserver.RegistryOptions{})
	fromCount := from.Count(t)
	baseImg := pushBase(t, fromCount.Host()+"/base")
	c := newClient(t, Options{})
	base, err := c.Base(context.Background(), fromCount.Host()+"/base@"+baseImg.Digest.String(), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, base, linuxAMD64, "own")
	fromCount.Reset()
	stats, err := c.Push(context.Background(), to.Host+"/app", img.Image, base, img.open)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (PushStats{Uploaded: 4}) {
		t.Errorf("stats %+v, want 4 uploaded", stats)
	}
	if n := len(fromCount.Calls("GET", "/blobs/")); n != 2 {
		t.Errorf("%d blob GETs from the base's registry, want 2", n)
	}
	crane(t, "validate", "--remote", to.Host+"/app@"+img.Digest.String())
}

// TestPushRefusesLayerNotMatchingDescriptor: an own layer whose bytes are
// not its descriptor's fails the push with the layer named, before its
// upload is committed and before any manifest.
func TestPushRefusesLayerNotMatchingDescriptor(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	other := buildImage(t, nil, linuxAMD64, "b")
	_, err := newClient(t, Options{}).Push(context.Background(), count.Host()+"/app", img.Image, nil, other.open)
	var de *DigestError
	if !errors.As(err, &de) || de.FromRemote || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("err %v, want the local layer 0 not matching", err)
	}
	var re *Error
	if errors.As(err, &re) {
		t.Errorf("a local mismatch is not the registry's error: %v", err)
	}
	for _, call := range count.Calls("PUT", "") {
		if strings.Contains(call.Query, img.Layers[0].Digest.Hex()) || strings.Contains(call.Path, "/manifests/") {
			t.Errorf("committed: %s %s?%s", call.Method, call.Path, call.Query)
		}
	}
}

// TestPushLayerReadFailsAsTheCallers: a layer whose reader fails
// mid-stream (its file changed since plan) fails the push with a
// SourceError naming the layer, not a registry Error blaming the network
// the read failed in, and commits nothing.
func TestPushLayerReadFailsAsTheCallers(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	changed := errors.New("the file changed since plan")
	failing := func(ctx context.Context, i int) (io.ReadCloser, error) {
		rc, err := img.open(ctx, i)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(io.MultiReader(io.LimitReader(rc, 10), iotest.ErrReader(changed))), nil
	}
	_, err := newClient(t, Options{}).Push(context.Background(), count.Host()+"/app", img.Image, nil, failing)
	var se *SourceError
	if !errors.As(err, &se) || se.Layer != 0 || !errors.Is(err, changed) {
		t.Fatalf("err %v, want a SourceError of layer 0", err)
	}
	var re *Error
	if errors.As(err, &re) {
		t.Errorf("a layer failing to read is not the registry's error: %v", err)
	}
	for _, call := range count.Calls("PUT", "") {
		if strings.Contains(call.Query, img.Layers[0].Digest.Hex()) || strings.Contains(call.Path, "/manifests/") {
			t.Errorf("committed: %s %s?%s", call.Method, call.Path, call.Query)
		}
	}
}

// TestPushStreams: a 64 MiB layer is pushed without being held in
// memory: the push allocates a small fraction of it.
func TestPushStreams(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	src := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		for i := range buf {
			buf[i] = byte(src.Uint32())
		}
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := digest.Parse(digest.Prefix + hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		t.Fatal(err)
	}
	// The bytes are not a tar: the registry stores blobs as they are.
	img := buildImage(t, nil, linuxAMD64)
	img.Layers = []image.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: sum, Size: size}}
	img.Manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		img.ConfigDigest, len(img.Config), sum, size))
	img.Digest = digest.Bytes(img.Manifest)
	open := func(context.Context, int) (io.ReadCloser, error) { return os.Open(path) }

	c := newClient(t, Options{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := c.Push(context.Background(), srv.Host+"/big", img.Image, nil, open); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("pushing a %d MiB layer allocated %d MiB: it is being buffered", size>>20, alloc>>20)
	} else {
		t.Logf("pushing a %d MiB layer allocated %d KiB", size>>20, alloc>>10)
	}
}

// TestPushCopyFailureNamesBaseRegistry: when the base's registry refuses
// the copy of a base layer, the error is about that registry, not the
// one pushed to.
func TestPushCopyFailureNamesBaseRegistry(t *testing.T) {
	noDockerConfig(t)
	from := testserver.StartRegistry(t, testserver.RegistryOptions{Users: map[string]string{testUser: testPassword}})
	to := testserver.StartRegistry(t, testserver.RegistryOptions{})
	creds := Options{Credentials: []Credential{{Registry: from.Host, Username: testUser, Password: testPassword}}}
	baseImg := buildImage(t, nil, linuxAMD64, "base-1")
	reader := newClient(t, creds)
	if _, err := reader.Push(context.Background(), from.Host+"/base", baseImg.Image, nil, baseImg.open); err != nil {
		t.Fatal(err)
	}
	base, err := reader.Base(context.Background(), from.Host+"/base@"+baseImg.Digest.String(), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, base, linuxAMD64, "own")
	_, err = newClient(t, Options{}).Push(context.Background(), to.Host+"/app", img.Image, base, img.open)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnauthorized || e.Registry != from.Host || e.Op != OpReadBlob ||
		!strings.Contains(err.Error(), "docker login "+from.Host) {
		t.Errorf("err %v, want a 401 from the base's registry %s", err, from.Host)
	}
}

// failingReader gives some bytes, then fails.
type failingReader struct{ err error }

func (r failingReader) Read(p []byte) (int, error) { return 0, r.err }

// TestPushSourceFailureIsTheCallers: a layer that cannot be opened, or
// whose reader fails mid-stream, fails the push with that error (the
// caller's) naming the layer by its index, never taken for the
// registry's (unreachable, say).
func TestPushSourceFailureIsTheCallers(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	img := buildImage(t, nil, linuxAMD64, "a", "b")
	errSource := errors.New("the tree's file changed since plan")
	for name, fail := range map[string]Layers{
		"open": func(context.Context, int) (io.ReadCloser, error) { return nil, errSource },
		"read": func(context.Context, int) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(strings.NewReader("some bytes"), failingReader{errSource})), nil
		},
	} {
		open := func(ctx context.Context, i int) (io.ReadCloser, error) { // layer 1 fails
			if i == 1 {
				return fail(ctx, i)
			}
			return img.open(ctx, i)
		}
		_, err := newClient(t, Options{}).Push(context.Background(), srv.Host+"/app", img.Image, nil, open)
		var se *SourceError
		if !errors.As(err, &se) || se.Layer != 1 || !errors.Is(err, errSource) || errors.As(err, new(*Error)) ||
			!strings.HasPrefix(err.Error(), "layer 1 ("+img.Layers[1].Digest.String()+"): the tree's file changed") {
			t.Errorf("%s: err %v, want the source's error for layer 1", name, err)
		}
	}
}

// TestPushStreamsPlannedLayer: the provider's path — a tree's layer planned
// with image.Plan, encoded by Built.Opener as Push reads it — holds
// neither the tar nor the blob in memory: pushing a 48 MiB layer
// allocates a small fraction of it. (image's TestLayerMemoryFlat bounds
// the encoder alone, TestPushStreams the upload of a file.)
func TestPushStreamsPlannedLayer(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	const files, fileSize = 12, 4 << 20
	dir := t.TempDir()
	buf := make([]byte, fileSize)
	for i := range files {
		_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(buf) // never fails
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.bin", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	l, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := image.DirSource(dir, l)
	req := image.Request{
		Layers:   []image.LayerSpec{{Tree: l.Digest(), Path: "/data", Compression: image.Gzip}},
		Platform: linuxAMD64,
	}
	built, err := image.Plan(ctx, req, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	size := built.Layers[0].Size
	if size < files*fileSize {
		t.Fatalf("the layer is %d bytes, less than its incompressible files", size)
	}

	c := newClient(t, Options{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stats, err := c.Push(ctx, srv.Host+"/planned", built.Image, nil, built.Opener(src))
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if stats.Uploaded != 2 {
		t.Fatalf("stats %+v, want the layer and the config uploaded", stats)
	}
	if alloc := int64(after.TotalAlloc - before.TotalAlloc); alloc > size/8 {
		t.Errorf("encoding and pushing a %d MiB layer allocated %d MiB: it is being buffered", size>>20, alloc>>20)
	} else {
		t.Logf("encoding and pushing a %d MiB layer allocated %d KiB", size>>20, alloc>>10)
	}
	crane(t, "validate", "--remote", srv.Host+"/planned@"+built.Digest.String())
}
