package s3store_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// loseEveryFirstAnswer loses the answer of the first try of every request
// that makes an object visible: every write lands, and its writer learns
// of it only by retrying.
func loseEveryFirstAnswer(c testserver.Call, tries int) testserver.Fault {
	makesVisible := c.Method == http.MethodPut && !strings.Contains(c.Query, "partNumber") ||
		c.Method == http.MethodPost && strings.Contains(c.Query, "uploadId")
	if makesVisible && tries == 0 {
		return testserver.LoseAnswer
	}
	return testserver.Pass
}

// TestLostAnswersOfEveryWriter: every write-once object the provider
// writes — a release record, a channel move, a yank entry, a tree listing,
// an action record, an archive reference, and the leases before them —
// lands, its answer is lost with the connection, and the SDK tries again
// and meets it. Each writer succeeds, never saying another apply wrote
// it, and the store holds its one entry.
func TestLostAnswersOfEveryWriter(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	direct := newBackend(t, bucket, srv.Settings())
	// Each case through a proxy of its own: a failure in one hides none.
	lossy := func(t *testing.T) (*store.Store, *testserver.Counter) {
		proxy := srv.Faulty(t, loseEveryFirstAnswer)
		settings := srv.Settings()
		settings.Endpoint = proxy.Endpoint
		return store.New(newBackend(t, bucket, settings)), proxy
	}
	// lost fails the test unless the proxy lost an answer of a write to a
	// key under part: the case did meet the fault.
	lost := func(t *testing.T, proxy *testserver.Counter, part string) {
		t.Helper()
		for _, c := range proxy.Calls("", part) {
			if c.Fault == testserver.LoseAnswer {
				return
			}
		}
		t.Fatalf("no answer of a write under %s was lost: the case tested nothing", part)
	}
	publish := func(t *testing.T, s *store.Store, version string) {
		t.Helper()
		rec, err := release.WriteRecord(ctx, s.Backend(), &release.Record{Name: "web", Version: version, Artifacts: map[string]string{"site": "sha256:" + strings.Repeat("ab", 32)}, Metadata: map[string]string{"v": version}}, time.Now())
		if err != nil || rec.Version != version {
			t.Fatalf("publishing web@%s: %v, %v", version, rec, err)
		}
	}

	t.Run("release record", func(t *testing.T) {
		s, proxy := lossy(t)
		publish(t, s, "1.0.0")
		publish(t, s, "1.0.1")
		lost(t, proxy, "/releases/web/versions/")
		if vs, err := release.List(ctx, direct, "web"); err != nil || len(vs) != 2 {
			t.Fatalf("versions %v, %v; want 1.0.0 and 1.0.1", vs, err)
		}
	})
	t.Run("channel move", func(t *testing.T) {
		s, proxy := lossy(t)
		m, err := release.WriteMove(ctx, s.Backend(), "web", "prod", 0, "", "1.0.0", "first", time.Now())
		if err != nil || m.Seq != 1 {
			t.Fatalf("first move: %v, %v", m, err)
		}
		m, err = release.WriteMove(ctx, s.Backend(), "web", "prod", 1, "1.0.0", "1.0.1", "next", time.Now())
		if err != nil || m.Seq != 2 {
			t.Fatalf("a move whose answer was lost: %v; want it written, as move 2", err)
		}
		lost(t, proxy, "/channels/web/prod/moves/")
		hist, err := release.History(ctx, direct, "web", "prod", 0)
		if err != nil || len(hist) != 2 || hist[1].To != "1.0.1" {
			t.Fatalf("history %v, %v; want exactly the two moves", hist, err)
		}
	})
	t.Run("yank entry", func(t *testing.T) {
		s, proxy := lossy(t)
		y, err := release.SetYank(ctx, s.Backend(), "web", "1.0.0", true, "breaks login", 0, time.Now())
		if err != nil || y.Seq != 1 {
			t.Fatalf("a yank whose answer was lost: %v, %v; want entry 1", y, err)
		}
		y, err = release.SetYank(ctx, s.Backend(), "web", "1.0.0", false, "fixed upstream", 1, time.Now())
		if err != nil || y.Seq != 2 {
			t.Fatalf("an un-yank whose answer was lost: %v, %v; want entry 2", y, err)
		}
		lost(t, proxy, "/releases/web/yanks/")
		keys, err := direct.List(ctx, "releases/web/yanks/")
		if err != nil || len(keys) != 2 {
			t.Fatalf("yank entries %v, %v; want 2", keys, err)
		}
	})
	t.Run("tree listing", func(t *testing.T) {
		s, proxy := lossy(t)
		dir, m := smallTree(t, 20, 7)
		if _, err := s.Publish(ctx, dir, m); err != nil {
			t.Fatalf("a publish whose writes' answers were lost: %v", err)
		}
		lost(t, proxy, "/trees/sha256/")
		lost(t, proxy, "/gc/leases/")
		if err := store.New(direct).Verify(ctx, m.Digest()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("action record and archive reference", func(t *testing.T) {
		s, proxy := lossy(t)
		out, log := []byte("built\n"), []byte("log\n")
		for _, b := range [][]byte{out, log} {
			if _, err := s.PutBlob(ctx, digest.Bytes(b), bytes.NewReader(b)); err != nil {
				t.Fatalf("a blob whose answer was lost: %v", err)
			}
		}
		r := &actioncache.Record{Key: digest.Bytes([]byte("step")), Output: digest.Bytes(out), Type: actioncache.TypeFile, Size: int64(len(out)), Files: 1, Log: digest.Bytes(log)}
		got, _, err := actioncache.Put(ctx, s, r)
		if err != nil || got.Output != r.Output {
			t.Fatalf("an action record whose answer was lost: %v, %v", got, err)
		}
		lost(t, proxy, "/actions/sha256/")
		listing, err := s.PutListing(ctx, &digest.Listing{Entries: []digest.Entry{{Path: "a", Kind: digest.KindFile, SHA256: digest.Bytes(out), Size: int64(len(out))}}})
		if err != nil {
			t.Fatal(err)
		}
		if a, err := s.PutArchiveRef(ctx, "zip-v1", listing, digest.Bytes(log)); err != nil || a != digest.Bytes(log) {
			t.Fatalf("an archive reference whose answer was lost: %v, %v", a, err)
		}
		lost(t, proxy, "/archives/zip-v1/")
	})
}

// TestBulkPublishRidesOutFaults: a first publish of 2,000 small files
// through a network that answers 503 SlowDown to 15% of requests and loses
// the answer of 3% (the request carried out) succeeds with the default
// retry budget, and stores every blob once.
func TestBulkPublishRidesOutFaults(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	proxy := srv.Faulty(t, testserver.Shares(19, 0.15, 0.03, 3))
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	ctx := context.Background()
	const n = 2000
	dir, m := smallTree(t, n)
	b := newBackend(t, bucket, settings)
	if b.Attempts() != s3store.DefaultMaxAttempts {
		t.Fatalf("%d attempts by default, want %d", b.Attempts(), s3store.DefaultMaxAttempts)
	}
	start := time.Now()
	stats, err := store.New(b).Publish(ctx, dir, m)
	if err != nil {
		t.Fatalf("publish through a flaky network: %v", err)
	}
	t.Logf("published %d files in %v", n, time.Since(start).Round(time.Millisecond))
	if stats.Needed != n || stats.Written+stats.Present != n {
		t.Errorf("stats %+v; want %d needed, each written or found", stats, n)
	}
	var slow, lostAnswers int
	for _, c := range proxy.Calls("", "") {
		switch c.Fault {
		case testserver.SlowDown:
			slow++
		case testserver.LoseAnswer:
			lostAnswers++
		}
	}
	if slow < n/10 || lostAnswers < n/100 {
		t.Fatalf("%d requests answered 503 and %d answers lost: the faults were not injected", slow, lostAnswers)
	}
	t.Logf("%d requests answered 503 SlowDown, %d answers lost", slow, lostAnswers)
	s := store.New(newBackend(t, bucket, srv.Settings()))
	if err := s.Verify(ctx, m.Digest()); err != nil {
		t.Fatal(err)
	}
	if missing, err := s.MissingBlobs(ctx); err != nil || len(missing) > 0 {
		t.Fatalf("listings lack blobs: %v %v", missing, err)
	}
}
