package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

var linuxARM64 = image.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

// pushIndex pushes an amd64 and an arm64 image and their index to repo,
// and tags the index v1.
func pushIndex(t *testing.T, c *Client, repo string) (amd, arm *testImage, idx *image.Index) {
	t.Helper()
	ctx := context.Background()
	amd = buildImage(t, nil, linuxAMD64, "amd")
	arm = buildImage(t, nil, linuxARM64, "arm")
	for _, img := range []*testImage{amd, arm} {
		if _, err := c.Push(ctx, repo, img.Image, nil, img.open); err != nil {
			t.Fatal(err)
		}
	}
	idx = buildIndex(t, amd, arm)
	if err := c.PushIndex(ctx, repo, idx); err != nil {
		t.Fatal(err)
	}
	d := image.Descriptor{MediaType: idx.MediaType, Digest: idx.Digest, Size: int64(len(idx.Manifest))}
	if err := c.Tag(ctx, repo, "v1", d, idx.Manifest); err != nil {
		t.Fatal(err)
	}
	return amd, arm, idx
}

// TestResolveIndexByTag: a tag naming an index resolves to the index's
// descriptor and its platform manifests; crane agrees on the digest and
// validates the index and its images.
func TestResolveIndexByTag(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	c := newClient(t, Options{})
	repo := srv.Host + "/multi"
	amd, arm, idx := pushIndex(t, c, repo)

	r, err := newClient(t, Options{}).Resolve(context.Background(), repo+":v1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != idx.Digest || r.MediaType != idx.MediaType || r.Size != int64(len(idx.Manifest)) || string(r.Manifest) != string(idx.Manifest) {
		t.Errorf("Resolve: %+v, want the index %s", r.Descriptor, idx.Digest)
	}
	if len(r.Platforms) != 2 || r.Platforms[0].Digest != amd.Digest || r.Platforms[0].Platform != linuxAMD64 ||
		r.Platforms[1].Digest != arm.Digest || r.Platforms[1].Platform != linuxARM64 {
		t.Errorf("Resolve: platforms %+v", r.Platforms)
	}
	if got := strings.TrimSpace(crane(t, "digest", repo+":v1")); got != idx.Digest.String() {
		t.Errorf("crane digest: %s, want %s", got, idx.Digest)
	}
	crane(t, "validate", "--remote", repo+":v1")

	d, ok, err := c.TagTarget(context.Background(), repo, "v1")
	if err != nil || !ok || d != idx.Digest {
		t.Errorf("TagTarget v1: %s %v %v, want %s", d, ok, err, idx.Digest)
	}
	d, ok, err = c.TagTarget(context.Background(), repo, "v2")
	if err != nil || ok {
		t.Errorf("TagTarget v2: %s %v %v, want none", d, ok, err)
	}
	_, ok, err = c.TagTarget(context.Background(), srv.Host+"/no-such-repo", "v1")
	if err != nil || ok {
		t.Errorf("TagTarget in a missing repository: %v %v, want none", ok, err)
	}
}

// TestResolveMissingTag: a missing tag is a not-found error that names
// the registry, repository and tag.
func TestResolveMissingTag(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	pushBase(t, srv.Host+"/app")
	_, err := newClient(t, Options{}).Resolve(context.Background(), srv.Host+"/app:nope")
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNotFound || e.Op != OpResolve || !IsNotFound(err) {
		t.Fatalf("err %#v, want a not-found *Error", err)
	}
	for _, want := range []string{srv.Host + "/app:nope", "check the name", "MANIFEST_UNKNOWN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

// TestBase: Base picks the platform's manifest from an index, returns its
// manifest and config, and reads nothing the second time; a tag is
// refused, saying what to use instead.
func TestBase(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	repo := count.Host() + "/multi"
	_, arm, idx := pushIndex(t, newClient(t, Options{}), repo)

	c := newClient(t, Options{})
	ref := repo + "@" + idx.Digest.String()
	count.Reset()
	b, err := c.Base(context.Background(), ref, linuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ref != repo+"@"+arm.Digest.String() || b.MediaType != arm.MediaType || string(b.Manifest) != string(arm.Manifest) || string(b.Config) != string(arm.Config) {
		t.Errorf("Base: %s %s, want the arm64 image %s", b.Ref, b.MediaType, arm.Digest)
	}
	if n := len(count.Calls("GET", "/manifests/")); n != 2 {
		t.Errorf("%d manifest GETs, want 2 (the index, the arm64 manifest)", n)
	}
	count.Reset()
	again, err := c.Base(context.Background(), ref, linuxARM64)
	if err != nil || again != b {
		t.Errorf("Base again: %v, %v: want the same *image.Base", again, err)
	}
	if calls := count.Calls("", ""); len(calls) != 0 {
		t.Errorf("Base again made %d requests, want none: %v", len(calls), calls)
	}
	// Without a variant, arm64 still finds the only arm64 entry.
	if b, err := c.Base(context.Background(), ref, image.Platform{OS: "linux", Architecture: "arm64"}); err != nil || b.Ref != repo+"@"+arm.Digest.String() {
		t.Errorf("Base linux/arm64: %v %v", b, err)
	}
	if _, err := c.Base(context.Background(), ref, image.Platform{OS: "linux", Architecture: "s390x"}); err == nil ||
		!strings.Contains(err.Error(), "no manifest for linux/s390x") || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("Base linux/s390x: %v, want no manifest, naming those there", err)
	}
	// Without a platform, an index is refused, saying to set one (it said
	// "no manifest for /").
	if _, err := c.Base(context.Background(), ref, image.Platform{}); err == nil ||
		!strings.Contains(err.Error(), "set `platform`") || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("Base without a platform: %v, want a refusal saying to set platform, naming those there", err)
	}
	// An image manifest for another platform is refused.
	if _, err := c.Base(context.Background(), b.Ref, linuxAMD64); err == nil || !strings.Contains(err.Error(), "is for linux/arm64/v8, not linux/amd64") {
		t.Errorf("Base of the arm64 image for amd64: %v", err)
	}
	if _, err := c.Base(context.Background(), repo+":v1", linuxARM64); err == nil || !strings.Contains(err.Error(), "data.immutable_image") {
		t.Errorf("Base of a tag: %v, want a refusal naming data.immutable_image", err)
	}
}
