package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// BenchmarkPutBlob stores new 100 KiB blobs on the local store: hash
// check, temp file, fsync, link.
func BenchmarkPutBlob(b *testing.B) {
	s := newStoreB(b)
	data := make([]byte, 100<<10)
	b.SetBytes(int64(len(data)))
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		copy(data, fmt.Sprint(i))
		if _, err := s.PutBlob(ctx, digest.Bytes(data), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutBlobDedup stores a blob that is already there: one stat.
func BenchmarkPutBlobDedup(b *testing.B) {
	s := newStoreB(b)
	data := make([]byte, 100<<10)
	sum := digest.Bytes(data)
	ctx := context.Background()
	if _, err := s.PutBlob(ctx, sum, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if written, err := s.PutBlob(ctx, sum, bytes.NewReader(data)); err != nil || written {
			b.Fatal(written, err)
		}
	}
}

// BenchmarkVerifyBlob reads a 1 MiB blob back and checks its digest.
func BenchmarkVerifyBlob(b *testing.B) {
	s := newStoreB(b)
	data := bytes.Repeat([]byte("x"), 1<<20)
	sum := digest.Bytes(data)
	ctx := context.Background()
	if _, err := s.PutBlob(ctx, sum, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.VerifyBlob(ctx, sum); err != nil {
			b.Fatal(err)
		}
	}
}
