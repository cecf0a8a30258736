package gcsstore_test

import (
	"bufio"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestBatchDeleteRequests: deleting n keys is ceil(n/MaxBatch) batch
// requests and no single deletes; missing keys among them are deleted as
// far as the store is concerned.
func TestBatchDeleteRequests(t *testing.T) {
	srv := testserver.StartGCS(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	const n = 2*gcsstore.MaxBatch + 50
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("blobs/%04d", i))
		if i%10 != 0 { // every tenth is missing
			srv.Put(t, bucket, prefix+"/"+keys[i], []byte("x"))
		}
	}
	counter := srv.Count(t)
	b := behind(t, srv, counter.Endpoint, bucket, gcsstore.Settings{})
	errs := b.DeleteMany(ctx, keys)
	if err := store.Failures(keys, errs); err != nil || len(errs) != n {
		t.Fatalf("%d results: %v", len(errs), err)
	}
	if got, single := len(counter.Calls(http.MethodPost, "/batch/storage/v1")), len(counter.Calls(http.MethodDelete, "")); got != 3 || single != 0 {
		t.Errorf("%d keys deleted in %d batch requests and %d single deletes, want 3 and 0", n, got, single)
	}
	if left, err := b.List(ctx, "blobs/"); err != nil || len(left) != 0 {
		t.Errorf("after the batch delete: %d objects left, %v", len(left), err)
	}
}

// batchServer answers batch requests as GCS does (multipart/mixed, an
// HTTP answer per part, Content-ID <response-N>), each delete as answer
// says for its object name and the times that name was asked before;
// it records the names of each batch. An answer of status leftOut has no
// part for its delete, one of unknownID a part whose Content-ID names no
// request; whole, when set, says the status to answer the nth batch
// request (from 1) with as a whole, or 0 to answer its parts.
type batchServer struct {
	mu      sync.Mutex
	seen    map[string]int
	batches [][]string
	posts   int
	whole   func(n int) int
	answer  func(name string, seen int) (int, string)
}

const (
	leftOut   = -1
	unknownID = -2
)

func (s *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.posts++
	n := s.posts
	s.mu.Unlock()
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.URL.Path != "/batch/storage/v1" || err != nil {
		http.Error(w, "not a batch", http.StatusBadRequest)
		return
	}
	if s.whole != nil && s.whole(n) != 0 {
		http.Error(w, http.StatusText(s.whole(n)), s.whole(n))
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	var names []string
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		req, err := http.ReadRequest(bufio.NewReader(part))
		if err != nil || req.Method != http.MethodDelete {
			http.Error(w, "not a delete", http.StatusBadRequest)
			return
		}
		escaped := req.URL.EscapedPath()
		name, _ := url.PathUnescape(escaped[strings.LastIndex(escaped, "/")+1:])
		names = append(names, name)
		s.mu.Lock()
		status, msg := s.answer(name, s.seen[name])
		s.seen[name]++
		s.mu.Unlock()
		id := strings.Replace(part.Header.Get("Content-Id"), "<", "<response-", 1)
		switch status {
		case leftOut:
			continue
		case unknownID:
			id, status = "<response-x"+id[1:], http.StatusNoContent
		}
		pw, _ := mw.CreatePart(map[string][]string{
			"Content-Type": {"application/http"},
			"Content-Id":   {id},
		})
		if status == http.StatusNoContent {
			_, _ = fmt.Fprintf(pw, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
			continue
		}
		body := fmt.Sprintf(`{"error":{"code":%d,"message":%q,"errors":[{"message":%q,"domain":"global"}]}}`, status, msg, msg)
		_, _ = fmt.Fprintf(pw, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
	}
	_ = mw.Close() // the client sees a truncated answer otherwise, which the test would report
	s.mu.Lock()
	s.batches = append(s.batches, names)
	s.mu.Unlock()
}

// TestBatchDeletePartialFailure: in a batch, a delete refused (403) is
// that key's error, naming the permission, while the others are deleted;
// a missing object (404) is deleted; a delete answered 503 is sent again,
// alone, in a later batch. fake-gcs-server answers every delete of an
// object 204 or 404, so a server answering batches as GCS does stands in.
func TestBatchDeletePartialFailure(t *testing.T) {
	s := &batchServer{seen: map[string]int{}, answer: func(name string, seen int) (int, string) {
		switch {
		case strings.HasSuffix(name, "denied"):
			return http.StatusForbidden, "ci@p.iam.gserviceaccount.com does not have storage.objects.delete access to the Google Cloud Storage object."
		case strings.HasSuffix(name, "gone"):
			return http.StatusNotFound, "No such object: " + name
		case strings.HasSuffix(name, "busy") && seen == 0:
			return http.StatusServiceUnavailable, "Backend Error"
		}
		return http.StatusNoContent, ""
	}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Setenv(gcsstore.EnvEmulator, srv.URL)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 3})
	keys := []string{"blobs/a", "blobs/denied", "blobs/b", "blobs/gone", "blobs/busy", "blobs/c"}
	errs := b.DeleteMany(context.Background(), keys)
	for i, err := range errs {
		if (err != nil) != (keys[i] == "blobs/denied") {
			t.Errorf("%s: %v", keys[i], err)
		}
	}
	err := store.Failures(keys, errs)
	for _, want := range []string{"1 of 6 deletes failed", "blobs/denied", "access denied", "needs storage.objects.delete"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the failure does not say %q: %v", want, err)
		}
	}
	if len(s.batches) != 2 || len(s.batches[0]) != len(keys) || fmt.Sprint(s.batches[1]) != "["+prefix+"/blobs/busy]" {
		t.Errorf("batches %q, want all the keys, then the one answered 503 alone", s.batches)
	}
}

// TestBatchDeleteTriesOnce: a key is in at most MaxAttempts requests in
// all, whether its batch fails whole every time, its own delete is
// answered busy every time, or first the one and then the other, and its
// error says how many.
func TestBatchDeleteTriesOnce(t *testing.T) {
	for name, whole := range map[string]func(int) int{
		"whole": func(int) int { return http.StatusServiceUnavailable },
		"parts": func(int) int { return 0 },
		"then whole": func(n int) int {
			if n == 1 {
				return 0
			}
			return http.StatusServiceUnavailable
		},
	} {
		s := &batchServer{seen: map[string]int{}, whole: whole, answer: func(string, int) (int, string) {
			return http.StatusServiceUnavailable, "Backend Error"
		}}
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		t.Setenv(gcsstore.EnvEmulator, srv.URL)
		b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 3})
		keys := []string{"blobs/a", "blobs/b"}
		errs := b.DeleteMany(context.Background(), keys)
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
				t.Errorf("%s: %s: %v, want the 503 after 3 attempts", name, keys[i], err)
			}
		}
		if s.posts != 3 {
			t.Errorf("%s: %d batch requests, want 3 (MaxAttempts)", name, s.posts)
		}
	}
}

// TestBatchDeleteUnanswered: a delete the batch's answer says nothing of
// (its part left out, or answered under a Content-ID naming no request)
// is sent again; one never answered fails after MaxAttempts requests.
func TestBatchDeleteUnanswered(t *testing.T) {
	s := &batchServer{seen: map[string]int{}, answer: func(name string, seen int) (int, string) {
		switch {
		case strings.HasSuffix(name, "left") && seen == 0, strings.HasSuffix(name, "never"):
			return leftOut, ""
		case strings.HasSuffix(name, "unknown") && seen == 0:
			return unknownID, ""
		}
		return http.StatusNoContent, ""
	}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Setenv(gcsstore.EnvEmulator, srv.URL)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 3})
	keys := []string{"blobs/a", "blobs/left", "blobs/unknown", "blobs/never"}
	errs := b.DeleteMany(context.Background(), keys)
	for i, err := range errs {
		if (err != nil) != (keys[i] == "blobs/never") {
			t.Errorf("%s: %v", keys[i], err)
		}
	}
	if err := errs[3]; err == nil || !strings.Contains(err.Error(), "has none for this delete") || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("blobs/never: %v, want no answer after 3 attempts", err)
	}
	want := "[[" + prefix + "/blobs/a " + prefix + "/blobs/left " + prefix + "/blobs/unknown " + prefix + "/blobs/never] [" +
		prefix + "/blobs/left " + prefix + "/blobs/unknown " + prefix + "/blobs/never] [" + prefix + "/blobs/never]]"
	if got := fmt.Sprint(s.batches); got != want {
		t.Errorf("batches %s, want %s", got, want)
	}
}
