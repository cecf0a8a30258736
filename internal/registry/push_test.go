package registry

import (
	"context"
	"strings"
	"testing"

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
