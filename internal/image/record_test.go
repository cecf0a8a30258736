package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var ctx = context.Background()

func recordStore(t *testing.T) *store.Store {
	t.Helper()
	st, _ := newStore(t)
	return st
}

// storeTree stores a one-file tree and returns its listing's digest.
func storeTree(t *testing.T, st *store.Store, body string) digest.Sum {
	t.Helper()
	sum := digest.Bytes([]byte(body))
	if _, err := st.PutBlob(ctx, sum, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m := &digest.Listing{Entries: []digest.Entry{{Path: "app", Kind: digest.KindExec, SHA256: sum, Size: int64(len(body))}}}
	got, err := st.PutListing(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// testImage is an image's manifest and config as an OCI image of base
// layers (from a base) and own layers would have them, and its record.
type testImage struct {
	manifest, config []byte
	rec              *Record
}

func sum(s string) digest.Sum { return digest.Bytes([]byte(s)) }

func makeImage(t *testing.T, base string, baseLayers int, own []LayerSpec) testImage {
	t.Helper()
	var layers []recordDescriptorJSON
	var diffIDs []string
	for i := range baseLayers {
		layers = append(layers, recordDescriptorJSON{MediaType: MediaTypeLayerGzip, Digest: sum("base" + string(rune('a'+i))).String(), Size: 100})
		diffIDs = append(diffIDs, sum("base diff"+string(rune('a'+i))).String())
	}
	var ls []Layer
	for i, spec := range own {
		l := Layer{Descriptor: Descriptor{MediaType: MediaTypeLayerGzip, Digest: sum("layer " + spec.Path), Size: int64(200 + i)},
			DiffID: sum("diff " + spec.Path), Spec: spec}
		if spec.Compression == Uncompressed {
			l.MediaType, l.DiffID = MediaTypeLayer, l.Digest
		}
		ls = append(ls, l)
		layers = append(layers, recordDescriptorJSON{MediaType: l.MediaType, Digest: l.Digest.String(), Size: l.Size})
		diffIDs = append(diffIDs, l.DiffID.String())
	}
	config, err := json.Marshal(map[string]any{"os": "linux", "architecture": "arm64", "variant": "v8",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeManifest,
		"config": recordDescriptorJSON{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest.Bytes(config).String(), Size: int64(len(config))},
		"layers": layers})
	if err != nil {
		t.Fatal(err)
	}
	img := &Image{MediaType: MediaTypeManifest, Manifest: manifest, Digest: digest.Bytes(manifest), Config: config,
		ConfigDigest: digest.Bytes(config), Platform: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	var b *Base
	if base != "" {
		b = &Base{Ref: base}
	}
	return testImage{manifest: manifest, config: config, rec: NewRecord(img, b, ls)}
}

func specs(t *testing.T, st *store.Store) []LayerSpec {
	return []LayerSpec{
		{Tree: storeTree(t, st, "one"), Path: "/app", UID: 65532, GID: 65532, FileMode: 0o644, DirMode: 0o755, Compression: Gzip},
		{Tree: storeTree(t, st, "two"), Path: "/etc/app", Compression: Uncompressed},
	}
}

const baseRef = "registry.example/base@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func keys(t *testing.T, st *store.Store, prefix string) []string {
	t.Helper()
	ks, err := st.Backend().List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestNewRecord: a record says what the image and its own layers are.
func TestNewRecord(t *testing.T) {
	st := recordStore(t)
	sp := specs(t, st)
	im := makeImage(t, baseRef, 2, sp)
	r := im.rec
	if r.Spec != RecordSpec || r.Digest != digest.Bytes(im.manifest).String() || r.Config != digest.Bytes(im.config).String() ||
		r.MediaType != MediaTypeManifest || r.Base != baseRef || r.Platform != (RecordPlatform{"linux", "arm64", "v8"}) {
		t.Fatalf("record %+v", r)
	}
	want := RecordLayer{Digest: sum("layer /app").String(), DiffID: sum("diff /app").String(), Size: 200, MediaType: MediaTypeLayerGzip,
		Tree: sp[0].Tree.String(), Path: "/app", UID: 65532, GID: 65532, FileMode: 0o644, DirMode: 0o755, Compression: Gzip}
	if len(r.Layers) != 2 || r.Layers[0] != want || r.Layers[1].Compression != Uncompressed || r.Layers[1].Digest != r.Layers[1].DiffID {
		t.Fatalf("layers %+v", r.Layers)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if err := r.agrees(im.manifest, im.config); err != nil {
		t.Fatal(err)
	}
	if got, want := r.References(), []string{store.BlobKey(digest.Bytes(im.manifest)), store.BlobKey(digest.Bytes(im.config)),
		store.ListingKey(sp[0].Tree), store.BlobKey(sp[0].Tree), store.ListingKey(sp[1].Tree), store.BlobKey(sp[1].Tree)}; !slices.Equal(got, want) {
		t.Fatalf("references %v, want %v", got, want)
	}
}

// TestPutGetRecord: a record is stored once, with its manifest and config
// as blobs, reads back as it was written, and is written again only as
// the very same record.
func TestPutGetRecord(t *testing.T) {
	st := recordStore(t)
	im := makeImage(t, "", 0, specs(t, st))
	if err := PutRecord(ctx, st, im.rec, im.manifest, im.config); err != nil {
		t.Fatal(err)
	}
	m := digest.Bytes(im.manifest)
	for _, s := range []digest.Sum{m, digest.Bytes(im.config)} {
		if ok, err := st.HasBlob(ctx, s); !ok || err != nil {
			t.Fatalf("blob %s stored: %v, %v", s, ok, err)
		}
	}
	got, err := GetRecord(ctx, st, m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, im.rec) {
		t.Fatalf("read back %+v\nwrote %+v", got, im.rec)
	}
	stored := keys(t, st, "images/")
	if !slices.Equal(stored, []string{store.ImageKey(m)}) {
		t.Fatalf("image keys %v", stored)
	}
	// Again: the same record is accepted.
	if err := PutRecord(ctx, st, im.rec, im.manifest, im.config); err != nil {
		t.Fatalf("storing the same record again: %v", err)
	}
	// Another record of the same image (its first layer said to land
	// elsewhere) is refused, and the first stays.
	other := *im.rec
	other.Layers = slices.Clone(im.rec.Layers)
	other.Layers[0].Path = "/srv"
	var conflict *RecordConflictError
	if err := PutRecord(ctx, st, &other, im.manifest, im.config); !errors.As(err, &conflict) || conflict.Existing == nil || conflict.Existing.Layers[0].Path != "/app" {
		t.Fatalf("another record of the same image: %v", err)
	}
	if got, err := GetRecord(ctx, st, m); err != nil || got.Layers[0].Path != "/app" {
		t.Fatalf("after the refused record: %+v, %v", got, err)
	}
	// An image not recorded.
	if _, err := GetRecord(ctx, st, sum("no such manifest")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a record not stored: %v", err)
	}
}

// TestPutRecordOnABase: a base's layers are in the manifest before the
// image's own, and a record of an image on a base names only its own.
func TestPutRecordOnABase(t *testing.T) {
	st := recordStore(t)
	im := makeImage(t, baseRef, 3, specs(t, st))
	if err := PutRecord(ctx, st, im.rec, im.manifest, im.config); err != nil {
		t.Fatal(err)
	}
	got, err := GetRecord(ctx, st, digest.Bytes(im.manifest))
	if err != nil || got.Base != baseRef || len(got.Layers) != 2 {
		t.Fatalf("%+v, %v", got, err)
	}
	// The same manifest said to be from scratch does not agree with it.
	scratch := *im.rec
	scratch.Base = ""
	if err := PutRecord(ctx, st, &scratch, im.manifest, im.config); !errors.As(err, new(*InvalidRecordError)) ||
		!strings.Contains(err.Error(), "2 layers of its own, built from scratch, and its manifest has 5") {
		t.Fatalf("a record of a based image said to be from scratch: %v", err)
	}
}

// TestPutRecordRefuses: a record that is not well formed, or does not
// agree with its manifest and config, or names a tree not stored, is
// refused and nothing is written: no record, no blob, no lease.
func TestPutRecordRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(im *testImage)
		want   string
	}{
		{"spec", func(im *testImage) { im.rec.Spec = "v0" }, `its spec is "v0"`},
		{"relative path", func(im *testImage) { im.rec.Layers[0].Path = "app" }, `layer 1: its path: the path "app" is not absolute`},
		{"path with ..", func(im *testImage) { im.rec.Layers[1].Path = "/etc/../app" }, `layer 2: its path: the path "/etc/../app" has a ".." component`},
		{"compression", func(im *testImage) { im.rec.Layers[0].Compression = "zstd" }, `its compression "zstd"`},
		{"media type", func(im *testImage) { im.rec.Layers[1].MediaType = MediaTypeLayerGzip }, "is not one of a layer compressed"},
		{"mode", func(im *testImage) { im.rec.Layers[0].FileMode = 0o644 | 1<<30 }, "are not permissions"},
		{"base", func(im *testImage) { im.rec.Base = "registry.example/base:latest" }, "not a reference pinned by digest"},
		{"platform", func(im *testImage) { im.rec.Platform.OS = "" }, "its platform"},
		{"manifest bytes", func(im *testImage) { im.manifest = append(im.manifest, ' ') }, "its manifest hashes to"},
		{"config bytes", func(im *testImage) { im.config = []byte("{}") }, "its config hashes to"},
		{"layer digest", func(im *testImage) { im.rec.Layers[0].Digest = sum("other").String() }, "layer 1 is sha256:"},
		{"layer size", func(im *testImage) { im.rec.Layers[0].Size++ }, "layer 1 is sha256:"},
		{"diff_id", func(im *testImage) { im.rec.Layers[0].DiffID = sum("other").String() }, "layer 1 is sha256:"},
		{"platform of the config", func(im *testImage) { im.rec.Platform.Variant = "" }, "its config is for linux/arm64/v8, not linux/arm64"},
		{"tree not stored", func(im *testImage) { im.rec.Layers[1].Tree = sum("not stored").String() }, "layer 2 of image sha256:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := recordStore(t)
			im := makeImage(t, "", 0, specs(t, st))
			before := keys(t, st, "")
			c.change(&im)
			err := PutRecord(ctx, st, im.rec, im.manifest, im.config)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if c.name == "tree not stored" {
				if !errors.As(err, new(*TreeMissingError)) {
					t.Fatalf("%T: %v", err, err)
				}
			} else if !errors.As(err, new(*InvalidRecordError)) {
				t.Fatalf("%T: %v", err, err)
			}
			if after := keys(t, st, ""); !slices.Equal(after, before) {
				t.Fatalf("a refused record changed the store:\n before %v\n after  %v", before, after)
			}
		})
	}
}

// TestGetRecordRefuses: a stored record is trusted only once it reads as
// one, names the digest it is stored under and agrees with its manifest
// and config blobs.
func TestGetRecordRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, st *store.Store, a, b testImage) digest.Sum // the digest then read
		want   string
	}{
		{"another image's record", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			storeBlobs(t, st, b) // b's key holds a's record
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), a.rec.encode())
			return digest.Bytes(b.manifest)
		}, "it is the record of image " + "sha256:"},
		{"altered layer", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			r := *b.rec
			r.Layers = slices.Clone(b.rec.Layers)
			r.Layers[0].Size = 1
			storeBlobs(t, st, b)
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), r.encode())
			return digest.Bytes(b.manifest)
		}, "layer 1 is"},
		{"unknown field", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			storeBlobs(t, st, b)
			body := bytes.Replace(b.rec.encode(), []byte(`"spec"`), []byte(`"signed":true,"spec"`), 1)
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), body)
			return digest.Bytes(b.manifest)
		}, `unknown field "signed"`},
		{"not well formed", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			r := *b.rec
			r.Config = "sha256:short"
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), r.encode())
			return digest.Bytes(b.manifest)
		}, "its config digest"},
		{"manifest missing", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), b.rec.encode())
			return digest.Bytes(b.manifest)
		}, "its manifest sha256:"},
		{"manifest altered", func(t *testing.T, st *store.Store, a, b testImage) digest.Sum {
			put(t, st, store.BlobKey(digest.Bytes(b.manifest)), append(b.manifest, ' '))
			put(t, st, store.ImageKey(digest.Bytes(b.manifest)), b.rec.encode())
			return digest.Bytes(b.manifest)
		}, "content hashes to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := recordStore(t)
			sp := specs(t, st)
			a := makeImage(t, "", 0, sp)
			if err := PutRecord(ctx, st, a.rec, a.manifest, a.config); err != nil {
				t.Fatal(err)
			}
			b := makeImage(t, "", 0, sp[:1])
			got, err := GetRecord(ctx, st, c.change(t, st, a, b))
			var corrupt *CorruptRecordError
			if !errors.As(err, &corrupt) || !strings.Contains(err.Error(), c.want) || got != nil {
				t.Fatalf("got %v, %v; want a CorruptRecordError with %q", got, err, c.want)
			}
			// A record in the way of a PutRecord is not taken for the
			// record being stored. (One whose blobs are missing is: PutRecord
			// stores them first.)
			if !strings.HasPrefix(c.name, "manifest") {
				var conflict *RecordConflictError
				if err := PutRecord(ctx, st, b.rec, b.manifest, b.config); !errors.As(err, &conflict) {
					t.Fatalf("storing over it: %v", err)
				}
			}
		})
	}
}

func storeBlobs(t *testing.T, st *store.Store, im testImage) {
	t.Helper()
	for _, blob := range [][]byte{im.manifest, im.config} {
		if _, err := st.PutBlob(ctx, digest.Bytes(blob), bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
	}
}

// put writes raw bytes at key, as a hand or another program would.
func put(t *testing.T, st *store.Store, key string, body []byte) {
	t.Helper()
	if err := st.Backend().Create(ctx, key, io.NopCloser(bytes.NewReader(body))); err != nil {
		t.Fatal(err)
	}
}
