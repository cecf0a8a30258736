package image

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// BenchmarkWriteLayer encodes 128 MiB of incompressible files (what a
// binary or a media tree is to gzip), gzip and uncompressed.
func BenchmarkWriteLayer(b *testing.B) {
	m := newMemSource()
	var es []digest.Entry
	buf := make([]byte, 32<<20)
	for i := range 4 {
		if _, err := rand.Read(buf); err != nil {
			b.Fatal(err)
		}
		es = append(es, m.file(fmt.Sprintf("f%d", i), digest.KindFile, string(buf)))
	}
	tree := m.tree(es...)
	for _, c := range []Compression{Gzip, Uncompressed} {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(4 << 25)
			for b.Loop() {
				if _, err := WriteLayer(context.Background(), m, LayerSpec{Tree: tree, Path: "/app", Compression: c}, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
