package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func TestLayerCache(t *testing.T) {
	c := NewLayerCache(filepath.Join(t.TempDir(), "layers"))
	spec := LayerSpec{Tree: digest.Bytes([]byte("tree")), Path: "/app", Compression: Gzip}
	l := Layer{Descriptor: Descriptor{MediaType: MediaTypeLayerGzip, Digest: digest.Bytes([]byte("blob")), Size: 42}, DiffID: digest.Bytes([]byte("tar")), Spec: spec}
	if _, ok := c.Get(spec); ok {
		t.Fatal("an empty cache answered")
	}
	c.Put(l)
	if got, ok := c.Get(spec); !ok || got != l {
		t.Fatalf("Get = %+v, %v; want %+v", got, ok, l)
	}
	// Anything the bytes depend on is in the key.
	for _, other := range []LayerSpec{
		{Tree: spec.Tree, Path: "/app2", Compression: Gzip},
		{Tree: spec.Tree, Path: "/app", Compression: Uncompressed},
		{Tree: spec.Tree, Path: "/app", UID: 1, Compression: Gzip},
		{Tree: spec.Tree, Path: "/app", FileMode: 0o600, Compression: Gzip},
		{Tree: digest.Bytes([]byte("other")), Path: "/app", Compression: Gzip},
	} {
		if _, ok := c.Get(other); ok {
			t.Errorf("%+v answered with %+v's entry", other, spec)
		}
	}
	// A damaged entry is a miss, not an answer.
	if err := os.WriteFile(c.file(cacheKey(spec)), []byte(`{"key":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(spec); ok {
		t.Fatal("a damaged entry answered")
	}
	c.Put(l)
	c.Forget(spec)
	if _, ok := c.Get(spec); ok {
		t.Fatal("a forgotten entry answered")
	}
	var none *LayerCache
	none.Put(l)
	if _, ok := none.Get(spec); ok {
		t.Fatal("a nil cache answered")
	}
}
