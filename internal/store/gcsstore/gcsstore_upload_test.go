package gcsstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestResumableUpload: an object over PartSize goes as a resumable
// upload, opened with the create's precondition, in PartSize chunks (a
// multiple of 256 KiB) of which only the last states the total, and
// reads back whole; the last carries the content's CRC32C (X-Goog-Hash),
// which GCS checks before it makes the object; one of exactly two chunks (the content ending on a
// chunk's end) too. One of PartSize-1 bytes is one multipart request.
func TestResumableUpload(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	counter := srv.Count(t)
	b := behind(t, srv, counter.Endpoint, bucket, gcsstore.Settings{})
	ctx := context.Background()
	for _, tc := range []struct {
		size   int
		chunks []string // the Content-Range of each chunk
	}{
		{2*gcsstore.PartSize + 1, []string{
			fmt.Sprintf("bytes 0-%d/*", gcsstore.PartSize-1),
			fmt.Sprintf("bytes %d-%d/*", gcsstore.PartSize, 2*gcsstore.PartSize-1),
			fmt.Sprintf("bytes %d-%d/%d", 2*gcsstore.PartSize, 2*gcsstore.PartSize, 2*gcsstore.PartSize+1),
		}},
		{2 * gcsstore.PartSize, []string{
			fmt.Sprintf("bytes 0-%d/*", gcsstore.PartSize-1),
			fmt.Sprintf("bytes %d-%d/%d", gcsstore.PartSize, 2*gcsstore.PartSize-1, 2*gcsstore.PartSize),
		}},
		{gcsstore.PartSize - 1, nil},
	} {
		data := make([]byte, tc.size)
		_, _ = rand.Read(data) // crypto/rand never fails
		key := fmt.Sprintf("blobs/%d", tc.size)
		counter.Reset()
		if err := b.Create(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatalf("%d bytes: %v", tc.size, err)
		}
		var opens, multiparts []testserver.Call
		for _, c := range counter.Calls(http.MethodPost, "/upload/") {
			switch {
			case strings.Contains(c.Query, "uploadType=resumable"):
				opens = append(opens, c)
			case strings.Contains(c.Query, "uploadType=multipart"):
				multiparts = append(multiparts, c)
			}
		}
		var ranges, hashes []string
		for _, c := range counter.Calls(http.MethodPut, "/upload/") {
			ranges = append(ranges, c.Header.Get("Content-Range"))
			hashes = append(hashes, c.Header.Get("X-Goog-Hash"))
		}
		if tc.chunks == nil {
			if len(multiparts) != 1 || len(opens) != 0 || len(ranges) != 0 {
				t.Errorf("%d bytes: %d multipart uploads, %d resumable ones, %d chunks; want one multipart upload", tc.size, len(multiparts), len(opens), len(ranges))
			}
		} else {
			if len(opens) != 1 || !strings.Contains(opens[0].Query, "ifGenerationMatch=0") || len(multiparts) != 0 {
				t.Errorf("%d bytes: %d resumable uploads opened, %d multipart ones; want one resumable, conditional: %v", tc.size, len(opens), len(multiparts), opens)
			}
			if fmt.Sprint(ranges) != fmt.Sprint(tc.chunks) {
				t.Errorf("%d bytes: chunks %q, want %q", tc.size, ranges, tc.chunks)
			}
			want := make([]string, len(tc.chunks))
			want[len(want)-1] = "crc32c=" + base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil,
				crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))))
			if fmt.Sprint(hashes) != fmt.Sprint(want) {
				t.Errorf("%d bytes: chunks' X-Goog-Hash %q, want %q", tc.size, hashes, want)
			}
		}
		rc, err := b.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close() // read whole
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes read back as %d, %v", tc.size, len(got), err)
		}
	}
}

// TestUploadChecksum: content changed on its way to the server (a byte
// flipped by a faulty proxy, router or NIC) is refused by the server,
// which checks the CRC32C the one-request upload states, and nothing is
// stored.
func TestUploadChecksum(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		body, err := io.ReadAll(pr.Out.Body)
		if err != nil {
			t.Error(err)
		}
		body = bytes.ReplaceAll(body, []byte("AAAA"), []byte("AAAB"))
		pr.Out.Body, pr.Out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}}
	corrupting := httptest.NewServer(proxy)
	t.Cleanup(corrupting.Close)
	b := behind(t, srv, corrupting.URL, bucket, gcsstore.Settings{MaxAttempts: 1})
	ctx := context.Background()
	err = b.Create(ctx, "blobs/x", strings.NewReader("content AAAA"))
	if err == nil || !strings.Contains(err.Error(), "CRC32C") {
		t.Fatalf("content changed on the way was not refused for its CRC32C: %v", err)
	}
	if ok, err := newBackend(t, bucket, gcsstore.Settings{}).Exists(ctx, "blobs/x"); err != nil || ok {
		t.Fatalf("after a refused upload: exists %v, %v", ok, err)
	}
}

// TestResumableUploadFaults: a resumable upload whose first chunk is
// answered 503 sends it again, and one whose last chunk's answer is lost
// (the object made; the chunk sent again meets a session that is gone)
// is its writer's: both Creates succeed and the objects read back whole,
// and a later Create of the same key is refused.
func TestResumableUploadFaults(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	data := make([]byte, gcsstore.PartSize+5)
	_, _ = rand.Read(data) // crypto/rand never fails
	firstChunkBusy := func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodPut && strings.HasPrefix(c.Header.Get("Content-Range"), "bytes 0-") && tries == 0 {
			return testserver.SlowDown
		}
		return testserver.Pass
	}
	for name, faults := range map[string]testserver.FaultFunc{"first chunk 503": firstChunkBusy, "last answer lost": loseFirstWrite()} {
		proxy := srv.Faulty(t, faults)
		b := behind(t, srv, proxy.Endpoint, bucket, gcsstore.Settings{})
		key := "blobs/" + strings.ReplaceAll(name, " ", "-")
		if err := b.Create(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		faulted := 0
		for _, c := range proxy.Calls(http.MethodPut, "/upload/") {
			if c.Fault != testserver.Pass {
				faulted++
			}
		}
		if faulted != 1 {
			t.Errorf("%s: %d chunks faulted, want 1: the fault was not met", name, faulted)
		}
		rc, err := newBackend(t, bucket, gcsstore.Settings{}).Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close() // read whole
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes of %d, %v", name, len(got), len(data), err)
		}
		if err := newBackend(t, bucket, gcsstore.Settings{}).Create(ctx, key, bytes.NewReader(data)); !errors.Is(err, store.ErrExists) {
			t.Fatalf("%s: a second Create: %v, want store.ErrExists", name, err)
		}
	}
}

// flipping is a proxy in front of srv that flips the first "AAAA" of
// every object read (alt=media) to "AAAB": a faulty proxy, router or
// NIC.
func flipping(t *testing.T, srv *testserver.GCS) string {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(body io.ReadCloser) (io.ReadCloser, int64) {
		b, err := io.ReadAll(body)
		if err != nil {
			t.Error(err)
		}
		b = bytes.Replace(b, []byte("AAAA"), []byte("AAAB"), 1)
		return io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Query().Get("alt") == "media" {
			res.Body, res.ContentLength = flip(res.Body)
			res.Header.Del("Content-Length")
		}
		return nil
	}
	s := httptest.NewServer(proxy)
	t.Cleanup(s.Close)
	return s.URL
}

// TestReadChecksum: an object read whole whose bytes changed on the way
// (a byte flipped) fails at its end, against the CRC32C the server states
// (X-Goog-Hash), instead of passing for the object.
func TestReadChecksum(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	if err := newBackend(t, bucket, gcsstore.Settings{}).Create(ctx, "blobs/x", strings.NewReader("content AAAA")); err != nil {
		t.Fatal(err)
	}
	b := behind(t, srv, flipping(t, srv), bucket, gcsstore.Settings{MaxAttempts: 1})
	rc, err := b.Open(ctx, "blobs/x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close() // read to its end
	var e *gcsstore.Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "CRC32C") || !strings.Contains(err.Error(), "changed on the way") {
		t.Fatalf("read %q, %v; want a CRC32C mismatch", got, err)
	}
	// A read: the object may be damaged where it is stored, and how to
	// repair it; nothing of a write's "sent".
	for _, want := range []string{"may be damaged where it is stored", "gcloud storage rm gs://" + bucket + "/some/prefix/blobs/x",
		"its listing (trees/sha256/", "apply again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "sent") {
		t.Errorf("a read's error speaks of what was sent: %v", err)
	}
	// Unchanged, the same read passes.
	rc, err = newBackend(t, bucket, gcsstore.Settings{}).Open(ctx, "blobs/x")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	_ = rc.Close() // read to its end
	if err != nil || string(got) != "content AAAA" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// chunkFlipping is a proxy in front of srv that flips a byte in the
// middle of the first chunk of a resumable upload (the first PUT), as a
// faulty proxy, router or NIC does; fake-gcs-server checks no CRC32C of
// a resumable upload, and makes the object. deletes, when not nil,
// answers the DELETEs instead of the server.
func chunkFlipping(t *testing.T, srv *testserver.GCS, deletes http.HandlerFunc) (endpoint string, flipped func() bool) {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := false
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the session URL the server gives is on the proxy
		mu.Lock()
		defer mu.Unlock()
		if pr.In.Method != http.MethodPut || done {
			return
		}
		body, err := io.ReadAll(pr.Out.Body)
		if err != nil {
			t.Error(err)
		}
		body[len(body)/2] ^= 1
		done = true
		pr.Out.Body, pr.Out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && deletes != nil {
			deletes(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL, func() bool { mu.Lock(); defer mu.Unlock(); return done }
}

// TestResumableUploadChangedOnTheWay: a chunk of a resumable upload
// changed on its way (a byte flipped) by a server that checks nothing
// makes an object whose CRC32C is not the content's: the write fails
// saying so, and the object it made is deleted (its generation only),
// so that a run again writes it anew instead of finding it there. When
// that delete fails, the error names the object and how to delete it.
func TestResumableUploadChangedOnTheWay(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	data := make([]byte, gcsstore.PartSize+5)
	_, _ = rand.Read(data) // crypto/rand never fails

	var deleted []string
	endpoint, flipped := chunkFlipping(t, srv, nil)
	b := behind(t, srv, endpoint, bucket, gcsstore.Settings{MaxAttempts: 1})
	err := b.Create(ctx, "blobs/x", bytes.NewReader(data))
	var e *gcsstore.Error
	if !flipped() || !errors.As(err, &e) {
		t.Fatalf("a chunk changed on the way (flipped: %v): %v, want a *gcsstore.Error", flipped(), err)
	}
	for _, want := range []string{"gs://" + bucket + "/some/prefix/blobs/x", "CRC32C", "changed on their way", "was deleted: nothing was stored",
		"Re-running apply is safe"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if ok, err := newBackend(t, bucket, gcsstore.Settings{}).Exists(ctx, "blobs/x"); err != nil || ok {
		t.Fatalf("after a write whose bytes changed on the way: exists %v, %v; want the object deleted", ok, err)
	}
	// Written again, unchanged, it is stored.
	if err := newBackend(t, bucket, gcsstore.Settings{}).Create(ctx, "blobs/x", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}

	// The delete refused: the error names the object, its generation,
	// and how to delete it.
	endpoint, _ = chunkFlipping(t, srv, func(w http.ResponseWriter, r *http.Request) {
		deleted = append(deleted, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":403,"message":"no storage.objects.delete"}}`) // the client may have gone
	})
	b = behind(t, srv, endpoint, bucket, gcsstore.Settings{MaxAttempts: 1})
	err = b.Create(ctx, "blobs/y", bytes.NewReader(data))
	if len(deleted) != 1 || !strings.Contains(deleted[0], "ifGenerationMatch=") {
		t.Fatalf("deletes %q, want one, conditional on the generation", deleted)
	}
	for _, want := range []string{"CRC32C", "changed on their way", "Deleting the object this write made failed", "403",
		"gcloud storage rm gs://" + bucket + "/some/prefix/blobs/y#"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// TestMultipartUploadChangedOnTheWay: a one-request upload whose CRC32C
// a proxy drops from the metadata, and whose content it changes, is made
// by the server as it came: the object's CRC32C in the answer is not the
// content's, so the write fails and the object it made is deleted.
func TestMultipartUploadChangedOnTheWay(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	crc := regexp.MustCompile(`"crc32c":"[^"]*",?`)
	changed := false
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		if pr.In.Method != http.MethodPost || !strings.Contains(pr.In.URL.RawQuery, "uploadType=multipart") {
			return
		}
		body, err := io.ReadAll(pr.Out.Body)
		if err != nil {
			t.Error(err)
		}
		stripped := crc.ReplaceAll(body, nil)
		out := bytes.ReplaceAll(stripped, []byte("AAAA"), []byte("AAAB"))
		changed = len(stripped) < len(body) && !bytes.Equal(stripped, out) // the CRC32C dropped, a byte flipped
		pr.Out.Body, pr.Out.ContentLength = io.NopCloser(bytes.NewReader(out)), int64(len(out))
	}}
	s := httptest.NewServer(proxy)
	t.Cleanup(s.Close)
	b := behind(t, srv, s.URL, bucket, gcsstore.Settings{MaxAttempts: 1})
	ctx := context.Background()
	err = b.Create(ctx, "blobs/x", strings.NewReader("content AAAA"))
	if !changed || err == nil || !strings.Contains(err.Error(), "CRC32C") || !strings.Contains(err.Error(), "nothing was stored") {
		t.Fatalf("content changed on the way (changed: %v), its CRC32C dropped: %v; want the write failed", changed, err)
	}
	if ok, err := newBackend(t, bucket, gcsstore.Settings{}).Exists(ctx, "blobs/x"); err != nil || ok {
		t.Fatalf("after the write failed: exists %v, %v; want the object deleted", ok, err)
	}
}
