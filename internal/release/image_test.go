package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func imageRef(repo, s string) string {
	return "registry.example/" + repo + "@" + digest.Bytes([]byte(s)).String()
}

// oldRecord is a record as the provider stored it before releases carried
// images, digest included: its content hashes to the same digest now.
const oldRecord = `{
  "spec": "immutable-release-v1",
  "name": "web",
  "version": "1.0.0",
  "digest": "sha256:43eb61a1394b55d6be8f20207e19d46d719d12c123b934d14cf8026e6397d75f",
  "artifacts": {
    "site": "sha256:7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
  },
  "metadata": {
    "env": "prod"
  },
  "published_at": "2025-06-01T00:00:00Z"
}
`

// TestImagesKeepOldDigests: a release without images has the digest it
// had before images existed (an old record reads, verifies and is adopted
// by the same content); images are content, and change the digest.
func TestImagesKeepOldDigests(t *testing.T) {
	b := backend(t)
	if err := b.Create(ctx, VersionKey("web", "1.0.0"), strings.NewReader(oldRecord)); err != nil {
		t.Fatal(err)
	}
	old := mustParse(t, "sha256:43eb61a1394b55d6be8f20207e19d46d719d12c123b934d14cf8026e6397d75f")
	if err := b.Create(ctx, store.IndexKey("web", old, "1.0.0"), strings.NewReader("1.0.0")); err != nil {
		t.Fatal(err)
	}
	rec, err := Get(ctx, b, "web", "1.0.0")
	if err != nil {
		t.Fatalf("an old record: %v", err)
	}
	for _, images := range []map[string]string{nil, {}} {
		c := content(a1)
		c.Images = images
		if got := c.Digest().String(); got != rec.Digest {
			t.Fatalf("images %#v: digest %s, the old record's %s", images, got, rec.Digest)
		}
		p, err := PlanVersion(ctx, b, c, "", "patch")
		if err != nil || p.Adopted == nil || p.Version != "1.0.0" {
			t.Fatalf("images %#v: plan %+v, %v; want the old version adopted", images, p, err)
		}
	}
	c := content(a1)
	c.Images = map[string]string{"api": imageRef("api", "v1")}
	want := `{"artifacts":{"site":"` + a1 + `"},"images":{"api":"` + imageRef("api", "v1") + `"},"metadata":{"env":"prod"},"name":"web","spec":"immutable-release-v1"}`
	if got := string(c.Encode()); got != want {
		t.Fatalf("encoding with images\n got %s\nwant %s", got, want)
	}
	if c.Digest().String() == rec.Digest {
		t.Fatal("images do not change the digest")
	}
	c2 := content(a1)
	c2.Images = map[string]string{"api": imageRef("api", "v2")}
	if c2.Digest() == c.Digest() {
		t.Fatal("another image has the same digest")
	}
	p, err := PlanVersion(ctx, b, c, "", "patch")
	if err != nil || p.Adopted != nil || p.Version != "1.0.1" {
		t.Fatalf("content with images: plan %+v, %v; want 1.0.1", p, err)
	}
}

func TestCheckImageRef(t *testing.T) {
	h := digest.Bytes([]byte("x")).Hex()
	for _, ok := range []string{
		"registry.example/api@sha256:" + h,
		"localhost:5000/team/api@sha256:" + h,
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@sha256:" + h,
		"docker.io/library/nginx@sha256:" + h,
	} {
		if err := CheckImageRef(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
		if sum, err := ImageDigest(ok); err != nil || sum.Hex() != h {
			t.Errorf("ImageDigest(%s) = %s, %v", ok, sum, err)
		}
	}
	for _, c := range []struct{ ref, want string }{
		{"registry.example/api:1.0", "is a tag, not an image digest reference"},
		{"registry.example/api:latest", "immutable_image's `ref`, or data.immutable_image's `ref`"},
		{"api:latest", "is a tag"},
		{"registry.example/api", "is not an image digest reference"},
		{"registry.example/api:1.0@sha256:" + h, "so give registry.example/api@sha256:" + h},
		{"nginx@sha256:" + h, "the registry to be explicitly defined"},
		{"registry.example/api@sha256:" + h[:60], "invalid checksum digest length"},
		{"registry.example/api@sha512:" + h + h, "pinned by a sha512 digest"},
		{"registry.example/API@sha256:" + h, "repository can only contain"},
		{"", "is not an image digest reference"},
	} {
		err := CheckImageRef(c.ref)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.ref, err, c.want)
		}
	}
}

// TestPublishImages: a record carries its images; Publish refuses a tag
// before holding anything, and holds each image's record key (which a
// collector then keeps) without requiring it to exist.
func TestPublishImages(t *testing.T) {
	st := store.New(backend(t))
	if _, err := st.PutBlob(ctx, digest.Bytes([]byte("one")), strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	api := imageRef("api", "v1")
	sum, _ := ImageDigest(api)
	r := &Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"site": a1}, Images: map[string]string{"api": api}}
	var held []string
	got, err := Publish(ctx, st, r, now, BeforeWrite(func(context.Context) error {
		for _, l := range leases(t, st) {
			held = append(held, l...)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(held, store.ImageKey(sum)) {
		t.Fatalf("the lease holds %v, not the image's record %s", held, store.ImageKey(sum))
	}
	if !reflect.DeepEqual(got.Images, map[string]string{"api": api}) {
		t.Fatalf("published images %v", got.Images)
	}
	read, err := Get(ctx, st.Backend(), "web", "1.0.0")
	if err != nil || !reflect.DeepEqual(read.Images, got.Images) || read.Digest != got.Digest {
		t.Fatalf("read back %+v, %v", read, err)
	}
	// No images: none in the record, not an empty map.
	r2, err := Publish(ctx, st, &Record{Name: "web", Version: "1.0.1", Artifacts: map[string]string{"site": a1}, Images: map[string]string{}}, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Backend().Open(ctx, VersionKey("web", "1.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(raw)
	_ = raw.Close()
	if strings.Contains(buf.String(), "images") || r2.Images != nil {
		t.Fatalf("a record without images:\n%s", buf.String())
	}
}

func TestPublishRefusesImageInput(t *testing.T) {
	for _, c := range []struct {
		images map[string]string
		input  Input
		key    string
	}{
		{map[string]string{"api": "registry.example/api:1.0"}, InputImage, "api"},
		{map[string]string{"a\u200bpi": imageRef("api", "v1")}, InputImageName, "a\u200bpi"},
	} {
		st := store.New(backend(t))
		_, err := Publish(ctx, st, &Record{Name: "web", Version: "1.0.0", Images: c.images}, now)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Input != c.input || inv.Key != c.key {
			t.Errorf("%v: %v, want *InvalidError for input %d, key %q", c.images, err, c.input, c.key)
		}
		untouched(t, st, fmt.Sprint(c.images))
	}
}

// putImage stores a record of an image from scratch (or on base) whose own
// layers are the one-file trees named by paths: layer i of path p is made
// of the file "<p> <tag>" (so the same tag gives the same layer).
func putImage(t *testing.T, st *store.Store, repo, base string, layers map[string]string, order []string) string {
	t.Helper()
	var ls []image.Layer
	var descs []map[string]any
	var diffIDs []string
	if base != "" {
		descs = append(descs, map[string]any{"mediaType": image.MediaTypeLayerGzip, "digest": digest.Bytes([]byte(base)).String(), "size": 1})
		diffIDs = append(diffIDs, digest.Bytes([]byte("diff "+base)).String())
	}
	for _, p := range order {
		body := p + " " + layers[p]
		sum := digest.Bytes([]byte(body))
		if _, err := st.PutBlob(ctx, sum, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		l := image.Layer{Descriptor: image.Descriptor{MediaType: image.MediaTypeLayerGzip, Digest: digest.Bytes([]byte("gz " + body)), Size: 10},
			DiffID: digest.Bytes([]byte("tar " + body)), Spec: image.LayerSpec{Tree: sum, Path: p, Compression: image.Gzip}}
		ls = append(ls, l)
		descs = append(descs, map[string]any{"mediaType": l.MediaType, "digest": l.Digest.String(), "size": l.Size})
		diffIDs = append(diffIDs, l.DiffID.String())
	}
	config, _ := json.Marshal(map[string]any{"os": "linux", "architecture": "amd64", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": image.MediaTypeManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.Bytes(config).String(), "size": len(config)},
		"layers": descs})
	img := &image.Image{MediaType: image.MediaTypeManifest, Digest: digest.Bytes(manifest), ConfigDigest: digest.Bytes(config),
		Platform: image.Platform{OS: "linux", Architecture: "amd64"}}
	var b *image.Base
	if base != "" {
		b = &image.Base{Ref: base}
	}
	if err := image.PutRecord(ctx, st, image.NewRecord(img, b, ls), manifest, config); err != nil {
		t.Fatal(err)
	}
	return "registry.example/" + repo + "@" + img.Digest.String()
}

// TestCompareImages: images added, removed and changed by reference; a
// changed image's layers compared by digest from the store's records
// (each read once), a base bump named; an image the store has no record
// of leaves its layers unknown, saying so, and is no error.
func TestCompareImages(t *testing.T) {
	eachBackend(t, func(t *testing.T, b store.Backend) {
		cb := &countingBackend{Backend: b}
		st := store.New(cb)
		order := []string{"/app", "/etc/app", "/srv"}
		apiV1 := putImage(t, st, "api", "", map[string]string{"/app": "v1", "/etc/app": "same", "/srv": "static"}, order)
		apiV2 := putImage(t, st, "api", "", map[string]string{"/app": "v2", "/etc/app": "same", "/srv": "static"}, order)
		baseA := "registry.example/base@" + digest.Bytes([]byte("base a")).String()
		baseB := "registry.example/base@" + digest.Bytes([]byte("base b")).String()
		workerV1 := putImage(t, st, "worker", baseA, map[string]string{"/app": "w"}, []string{"/app"})
		workerV2 := putImage(t, st, "worker", baseB, map[string]string{"/app": "w", "/etc/app": "new"}, []string{"/app", "/etc/app"})
		elsewhere := imageRef("proxy", "v1")
		v1 := &Record{Name: "web", Version: "1.0.0", Images: map[string]string{"api": apiV1, "worker": workerV1, "proxy": elsewhere, "old": elsewhere}}
		v2 := &Record{Name: "web", Version: "1.0.1", Images: map[string]string{"api": apiV2, "worker": workerV2, "proxy": imageRef("proxy", "v2"), "new": apiV2}}
		d, err := Compare(ctx, v1, v2, StoreListings(st), 10)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.ImagesAdded, map[string]string{"new": apiV2}) || !reflect.DeepEqual(d.ImagesRemoved, map[string]string{"old": elsewhere}) {
			t.Fatalf("added %v, removed %v", d.ImagesAdded, d.ImagesRemoved)
		}
		if len(d.ImagesChanged) != 3 || d.ImagesChanged["api"].Layers != nil {
			t.Fatalf("changed before the layers are read: %+v", d.ImagesChanged)
		}
		cb.opened = nil
		if err := d.CompareLayers(ctx, StoreImageRecords(st)); err != nil {
			t.Fatal(err)
		}
		images := 0
		for _, k := range cb.opened {
			if strings.HasPrefix(k, "images/") {
				images++
			}
		}
		if images != 6 { // api, worker and proxy, from and to
			t.Fatalf("%d image records read (%v), want 6: each once", images, cb.opened)
		}
		gz := func(body string) string { return digest.Bytes([]byte("gz " + body)).String() }
		api := d.ImagesChanged["api"]
		if api.From != apiV1 || api.To != apiV2 || api.Layers == nil || api.Unknown != "" {
			t.Fatalf("api: %+v", api)
		}
		if want := []string{"- " + gz("/app v1") + " /app", "+ " + gz("/app v2") + " /app"}; !slices.Equal(api.Layers.Lines(), want) {
			t.Fatalf("api's layers:\n%q\nwant\n%q", api.Layers.Lines(), want)
		}
		worker := d.ImagesChanged["worker"].Layers
		if want := []string{"~ base " + baseA + " -> " + baseB, "+ " + gz("/etc/app new") + " /etc/app"}; worker == nil || !slices.Equal(worker.Lines(), want) {
			t.Fatalf("worker's layers: %+v", worker)
		}
		proxy := d.ImagesChanged["proxy"]
		if proxy.Layers != nil || !strings.Contains(proxy.Unknown, "no record of "+elsewhere+" or "+imageRef("proxy", "v2")) {
			t.Fatalf("proxy, recorded nowhere: %+v", proxy)
		}
		// A record that is not trusted is an error naming the image.
		bad := putImage(t, st, "bad", "", map[string]string{"/x": "1"}, []string{"/x"})
		sum, _ := ImageDigest(bad)
		rec, err := image.GetRecord(ctx, st, sum)
		if err != nil {
			t.Fatal(err)
		}
		if err := deleter(t, b).Delete(ctx, store.BlobKey(mustParse(t, rec.Config))); err != nil {
			t.Fatal(err)
		}
		d, err = Compare(ctx, v1, &Record{Name: "web", Version: "1.0.2", Images: map[string]string{"api": bad}}, StoreListings(st), 10)
		if err != nil {
			t.Fatal(err)
		}
		var corrupt *image.CorruptRecordError
		if err := d.CompareLayers(ctx, StoreImageRecords(st)); !errors.As(err, &corrupt) || !strings.Contains(err.Error(), `image "api"`) {
			t.Fatalf("a record whose config is gone: %v", err)
		}
	})
}

func mustParse(t *testing.T, s string) digest.Sum {
	t.Helper()
	sum, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func deleter(t *testing.T, b store.Backend) store.Deleter {
	t.Helper()
	d, ok := b.(store.Deleter)
	if !ok {
		t.Fatalf("%s cannot delete", b)
	}
	return d
}

// TestGetRefusesATaggedImage: a record naming an image by tag was not
// written by Publish (its digest may well match): it is not trusted.
func TestGetRefusesATaggedImage(t *testing.T) {
	b := backend(t)
	r := &Record{Spec: Spec, Name: "web", Version: "1.0.0", Artifacts: map[string]string{}, Metadata: map[string]string{},
		Images: map[string]string{"api": "registry.example/api:latest"}, PublishedAt: "2026-01-02T03:04:05Z"}
	r.Digest = r.Content().Digest().String()
	if err := b.Create(ctx, VersionKey("web", "1.0.0"), bytes.NewReader(r.encode())); err != nil {
		t.Fatal(err)
	}
	var tampered *TamperedError
	if _, err := Get(ctx, b, "web", "1.0.0"); !errors.As(err, &tampered) || !strings.Contains(err.Error(), "its image api: ") {
		t.Fatalf("a record naming a tag: %v", err)
	}
}

// TestCheckImageRefEscapesWhatItQuotes: a reference holding a character
// that does not show as itself is refused with a message that shows it
// escaped, also in the part go-containerregistry wrote (which quotes
// the repository as it is), so that an invisible or reordering
// character cannot change how the message reads.
func TestCheckImageRefEscapesWhatItQuotes(t *testing.T) {
	h := digest.Bytes([]byte("x")).Hex()
	for _, c := range []string{"\u200b", "\u202e", "\x1b[31m"} {
		for _, ref := range []string{"registry.example/we" + c + "b@sha256:" + h, "regi" + c + "stry.example/web@sha256:" + h} {
			err := CheckImageRef(ref)
			if err == nil {
				t.Errorf("%q was accepted", ref)
			} else if strings.Contains(err.Error(), c) {
				t.Errorf("%q: the message holds the character unescaped: %q", ref, err)
			}
		}
	}
}

// TestGetRefusesAnInvisibleImageName: a record whose image name holds a
// character that does not show as itself was not written by Publish
// (its digest may well match): it is not trusted, and the message shows
// the name escaped.
func TestGetRefusesAnInvisibleImageName(t *testing.T) {
	h := digest.Bytes([]byte("x")).Hex()
	for i, n := range []string{"a\u202eb", "a\u200bb"} {
		b := backend(t)
		r := &Record{Spec: Spec, Name: "web", Version: "1.0.0", Artifacts: map[string]string{}, Metadata: map[string]string{},
			Images: map[string]string{n: "registry.example/api@sha256:" + h}, PublishedAt: "2026-01-02T03:04:05Z"}
		r.Digest = r.Content().Digest().String()
		if err := b.Create(ctx, VersionKey("web", "1.0.0"), bytes.NewReader(r.encode())); err != nil {
			t.Fatal(err)
		}
		var tampered *TamperedError
		_, err := Get(ctx, b, "web", "1.0.0")
		if !errors.As(err, &tampered) {
			t.Fatalf("%d: a record with the image name %q: %v", i, n, err)
		}
		if strings.ContainsAny(err.Error(), "\u202e\u200b") {
			t.Errorf("%d: the message holds the name unescaped: %q", i, err)
		}
	}
}
