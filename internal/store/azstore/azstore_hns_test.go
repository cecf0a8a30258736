package azstore_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestListSkipsDirectories: a zero-length blob marked as a directory
// (metadata hdi_isfolder=true, what Data Lake clients and BlobFuse write,
// and what an account with a hierarchical namespace lists its directories
// as) is not an object of the store: List and ListInfo leave it out.
// (Azurite has no hierarchical namespace: the ResourceType "directory"
// such an account lists is not served here.)
func TestListSkipsDirectories(t *testing.T) {
	srv := testserver.StartAzurite(t)
	srv.Env(t)
	b := newBackend(t, srv.NewContainer(t))
	ctx := context.Background()
	if err := b.Create(ctx, "blobs/sha256/ab/x", bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	yes := "true"
	for _, dir := range []string{"blobs", "blobs/sha256", "blobs/sha256/ab"} {
		_, err := b.Container().NewBlockBlobClient(b.BlobName(dir)).Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)),
			&blockblob.UploadOptions{Metadata: map[string]*string{"hdi_isfolder": &yes}})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := b.List(ctx, "blobs")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"blobs/sha256/ab/x"}; !slices.Equal(keys, want) {
		t.Fatalf("List: %q, want %q", keys, want)
	}
	infos, err := b.ListInfo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != "blobs/sha256/ab/x" {
		t.Fatalf("ListInfo: %+v, want only blobs/sha256/ab/x", infos)
	}
}
