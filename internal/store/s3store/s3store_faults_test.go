package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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
	if b.Attempts() != store.DefaultMaxAttempts {
		t.Fatalf("%d attempts by default, want %d", b.Attempts(), store.DefaultMaxAttempts)
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

// TestLostAnswerIsToldByTag: a write whose answer is lost, retried and
// meeting the object it made, knows it by the tag it stored with it (a
// HEAD), never by downloading the object: a multipart upload of many
// megabytes is not read back.
func TestLostAnswerIsToldByTag(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	direct := newBackend(t, bucket, srv.Settings())
	for _, c := range []struct {
		key  string
		data []byte
	}{
		{"blobs/small", []byte("small\n")},
		{"blobs/big", bytes.Repeat([]byte("big "), (s3store.PartSize+1)/4+1)}, // a multipart upload
	} {
		okey := direct.ObjectKey(c.key)
		proxy := srv.Faulty(t, func(call testserver.Call, tries int) testserver.Fault {
			if !strings.HasSuffix(call.Path, "/"+okey) {
				return testserver.Pass
			}
			makesVisible := call.Method == http.MethodPut && !strings.Contains(call.Query, "partNumber") ||
				call.Method == http.MethodPost && strings.Contains(call.Query, "uploadId")
			switch {
			case makesVisible && tries == 0:
				return testserver.LoseAnswer
			case makesVisible && tries == 1:
				// What S3 may answer a retried completion (versitygw
				// completes the same upload again): the object exists.
				return testserver.PreconditionFailed
			}
			return testserver.Pass
		})
		settings := srv.Settings()
		settings.Endpoint = proxy.Endpoint
		if err := newBackend(t, bucket, settings).Create(ctx, c.key, bytes.NewReader(c.data)); err != nil {
			t.Fatalf("%s: a write whose answer was lost: %v", c.key, err)
		}
		var lostAnswers, heads int
		for _, call := range proxy.Calls("", "/"+okey) {
			switch {
			case call.Fault == testserver.LoseAnswer:
				lostAnswers++
			case call.Method == http.MethodGet:
				t.Errorf("%s: %s %s?%s: the object was downloaded to tell whose it is", c.key, call.Method, call.Path, call.Query)
			case call.Method == http.MethodHead:
				heads++
			}
		}
		if lostAnswers != 1 || heads != 1 {
			t.Fatalf("%s: %d answers lost and %d HEADs; want one of each", c.key, lostAnswers, heads)
		}
		head, err := direct.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(okey)})
		if err != nil || len(head.Metadata[s3store.TagMetadata]) != 32 {
			t.Fatalf("%s: metadata %v (%v); want a 128-bit tag in hex under %q", c.key, head.Metadata, err, s3store.TagMetadata)
		}
	}
}

// TestLostAnswerWhoseObjectVanished: a write's answer is lost, and its
// object is deleted before the retry's 412 is checked. The key is empty,
// so the write is tried again, once, and stands; an object vanishing
// every time is an error that says what is happening.
func TestLostAnswerWhoseObjectVanished(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	direct := newBackend(t, bucket, srv.Settings())
	for _, c := range []struct {
		name    string
		deletes int // how many checks of the object find it deleted
		want    string
	}{
		{"deleted once", 1, ""},
		{"deleted every time", 100, "something is deleting objects of the store"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "channels/web/prod/moves/" + strings.ReplaceAll(c.name, " ", "-")
			okey := direct.ObjectKey(key)
			proxy := srv.Faulty(t, func(call testserver.Call, tries int) testserver.Fault {
				// Every write's answer lost: each retry meets the object.
				if call.Method == http.MethodPut && strings.HasSuffix(call.Path, "/"+okey) && tries%2 == 0 {
					return testserver.LoseAnswer
				}
				return testserver.Pass
			})
			deleted := 0
			// A read of the object (to tell whose it is) finds it gone:
			// deleted just before, as by a collector or a lifecycle rule.
			proxy.Notify(func(call testserver.Call) {
				if (call.Method == http.MethodHead || call.Method == http.MethodGet) && strings.HasSuffix(call.Path, "/"+okey) && deleted < c.deletes {
					deleted++
					if err := direct.Delete(ctx, key); err != nil {
						t.Error(err)
					}
				}
			})
			settings := srv.Settings()
			settings.Endpoint = proxy.Endpoint
			err := newBackend(t, bucket, settings).Create(ctx, key, strings.NewReader(`{"to":"1.0.1"}`))
			if c.want == "" {
				if err != nil {
					t.Fatalf("a write whose object vanished before it was checked: %v; want it written again", err)
				}
				if got, err := io.ReadAll(mustOpen(t, direct, key)); err != nil || string(got) != `{"to":"1.0.1"}` {
					t.Fatalf("the key holds %q (%v)", got, err)
				}
				return
			}
			if err == nil || errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("a write whose object vanishes every time: %v; want an error saying %q", err, c.want)
			}
		})
	}
}

func mustOpen(t *testing.T, b store.Backend, key string) io.ReadCloser {
	t.Helper()
	rc, err := b.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}
