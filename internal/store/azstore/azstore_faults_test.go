package azstore_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestPublishThroughAFlakyNetwork: a publish through a proxy that answers
// 503 to some requests and loses the answers of others (each carried out)
// on their first tries succeeds, writes every blob once, stores the
// listing after its blobs, and no write is taken for another's.
func TestPublishThroughAFlakyNetwork(t *testing.T) {
	srv := testserver.StartAzurite(t)
	containerName := srv.NewContainer(t)
	proxy := srv.Faulty(t, testserver.Shares(7, 0.15, 0.15, 2))
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	b, err := azstore.New(context.Background(), testserver.AzuriteAccount, containerName, "p", azstore.Settings{MaxConcurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(b)
	const n = 200
	dir, m := smallTree(t, n)
	stats, err := s.Publish(context.Background(), dir, m)
	if err != nil {
		t.Fatalf("publish through a flaky network: %v", err)
	}
	if stats.Written != n {
		t.Errorf("wrote %d blobs, want %d (a lost answer taken for another writer's?)", stats.Written, n)
	}
	var slowed, lost int
	for _, c := range proxy.Calls(http.MethodPut, "") {
		switch c.Fault {
		case testserver.SlowDown:
			slowed++
		case testserver.LoseAnswer:
			lost++
		}
	}
	if slowed == 0 || lost == 0 {
		t.Fatalf("%d writes answered 503 and %d answers lost: the network was not flaky", slowed, lost)
	}
	if err := s.Verify(context.Background(), m.Digest()); err != nil {
		t.Fatal(err)
	}
	if missing, err := s.MissingBlobs(context.Background()); err != nil || len(missing) > 0 {
		t.Fatalf("listings lack blobs: %v %v", missing, err)
	}
}

// TestLostCommitOfABlockUpload: a blob over BlockSize is staged in blocks;
// the commit lands and its answer is lost; the retry meets the blob and
// finds its own tag: the write succeeded. Another writer's same bytes
// would be ErrExists.
func TestLostCommitOfABlockUpload(t *testing.T) {
	srv := testserver.StartAzurite(t)
	containerName := srv.NewContainer(t)
	srv.Env(t)
	direct := newBackend(t, containerName)
	proxy := srv.Faulty(t, func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPut && strings.Contains(c.Query, "comp=blocklist") && tries == 0 {
			return testserver.LoseAnswer
		}
		return testserver.Pass
	})
	t.Setenv(azstore.ConnectionStringEnv, testserver.ConnectionString(proxy.Endpoint))
	lossy := newBackend(t, containerName)
	data := bytes.Repeat([]byte("z"), azstore.BlockSize+1)
	if err := lossy.Create(context.Background(), "blobs/big", bytes.NewReader(data)); err != nil {
		t.Fatalf("a commit whose answer was lost: %v", err)
	}
	if len(proxy.Calls(http.MethodPut, "/blobs/big")) < 4 { // 2 blocks, the lost commit, its retry
		t.Fatalf("the upload was not staged and committed: %v", proxy.Calls("", ""))
	}
	if err := direct.Create(context.Background(), "blobs/big", bytes.NewReader(data)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("another writer of the same bytes: %v, want ErrExists", err)
	}
}
