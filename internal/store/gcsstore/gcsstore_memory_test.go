package gcsstore_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestCreateMemory: a Create of an object past the first small buffer but
// far under PartSize (100 KB) allocates about its size, not a PartSize
// chunk: the part buffer is pooled and the one request's body is sent
// from it (Google's library allocated a ChunkSize buffer per Writer and
// never pooled it, so a ChunkSize of PartSize cost 8 MiB per object).
func TestCreateMemory(t *testing.T) {
	srv := testserver.StartGCS(t)
	srv.Env(t)
	b := newBackend(t, srv.NewBucket(t), gcsstore.Settings{})
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 10_000) // 100 KB
	create := func(i int) {
		if err := b.Create(ctx, fmt.Sprintf("blobs/%d", i), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	create(-1) // the client, the pools
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		create(i)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per Create of %d bytes", per, len(data))
	if limit := uint64(2 << 20); per > limit {
		t.Fatalf("a Create of %d bytes allocated %d bytes on average, want at most %d", len(data), per, limit)
	}
}
