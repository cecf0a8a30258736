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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// resumable is a server answering resumable uploads as GCS does (the
// session opened with a Location on itself; each chunk answered 308 with
// the Range it holds, the last one 200), with the bytes it keeps of each
// chunk decided by keep: what fake-gcs-server cannot be made to answer.
// Any other request is answered 404, and a listing an empty bucket.
type resumable struct {
	srv *httptest.Server
	// keep is how many bytes of a chunk (start, its length) the server
	// keeps, and whether its 308 states a Range; nil keeps them all.
	keep func(start int64, n int) (int, bool)
	// location is the session URL given, nil: one on the server.
	location func() string

	mu     sync.Mutex
	held   []byte
	hash   string   // the last chunk's X-Goog-Hash
	ranges []string // every chunk's Content-Range
	gets   []string // every GET's query
	done   bool
}

func startResumable(t *testing.T, r *resumable) *resumable {
	t.Helper()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	t.Setenv(gcsstore.EnvEmulator, r.srv.URL)
	return r
}

func (r *resumable) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case req.Method == http.MethodPost && req.URL.Query().Get("uploadType") == "resumable":
		loc := r.srv.URL + "/upload/storage/v1/b/bucket/o?uploadType=resumable&upload_id=1"
		if r.location != nil {
			loc = r.location()
		}
		w.Header().Set("Location", loc)
		return
	case req.Method == http.MethodPut:
		cr := req.Header.Get("Content-Range")
		r.ranges = append(r.ranges, cr)
		if len(r.ranges) > 100 {
			http.Error(w, "too many chunks", http.StatusBadRequest) // a client that never stops
			return
		}
		span, total, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "/")
		if span != "*" {
			first, _, _ := strings.Cut(span, "-")
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil || start != int64(len(r.held)) {
				http.Error(w, "chunk not at the end of what is held", http.StatusBadRequest)
				return
			}
			n, withRange := len(body), true
			if r.keep != nil && total == "*" {
				n, withRange = r.keep(start, len(body))
			}
			r.held = append(r.held, body[:n]...)
			if total == "*" {
				if withRange && len(r.held) > 0 {
					w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(r.held)-1))
				}
				w.WriteHeader(http.StatusPermanentRedirect)
				return
			}
		}
		r.hash = req.Header.Get("X-Goog-Hash")
		if got := crc32cOf(r.held); r.hash != got {
			// GCS's answer to content not matching the CRC32C stated.
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":{"code":400,"message":"Provided CRC32C \"%s\" doesn't match calculated CRC32C \"%s\"."}}`,
				strings.TrimPrefix(r.hash, "crc32c="), strings.TrimPrefix(got, "crc32c="))
			return
		}
		r.done = true
		// The object resource, as GCS answers it.
		_, _ = fmt.Fprintf(w, `{"generation":"1","size":"%d","crc32c":"%s"}`, len(r.held), strings.TrimPrefix(crc32cOf(r.held), "crc32c=")) // the client may have gone
		return
	case req.Method == http.MethodGet:
		r.gets = append(r.gets, req.URL.RawQuery)
		if strings.HasSuffix(req.URL.Path, "/o") {
			_, _ = w.Write([]byte(`{"items":[]}`)) // the client may have gone
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":{"code":404,"message":"No such object."}}`))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails
	return b
}

func crc32cOf(b []byte) string {
	return "crc32c=" + base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

// TestChunkKeptShort: a chunk of which the server keeps only the start
// (a 308 whose Range ends short of it) has its rest sent again, from
// where the server's Range ends, and the upload completes whole.
func TestChunkKeptShort(t *testing.T) {
	const half = gcsstore.PartSize / 2
	r := startResumable(t, &resumable{keep: func(start int64, n int) (int, bool) {
		if start%gcsstore.PartSize == 0 && n == gcsstore.PartSize {
			return half, true // the first send of a whole chunk: half of it
		}
		return n, true
	}})
	data := randomBytes(2*gcsstore.PartSize + 1)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	if err := b.Create(context.Background(), "blobs/x", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	const p = gcsstore.PartSize
	want := []string{
		fmt.Sprintf("bytes 0-%d/*", p-1), fmt.Sprintf("bytes %d-%d/*", half, p-1),
		fmt.Sprintf("bytes %d-%d/*", p, 2*p-1), fmt.Sprintf("bytes %d-%d/*", p+half, 2*p-1),
		fmt.Sprintf("bytes %d-%d/%d", 2*p, 2*p, 2*p+1),
	}
	if fmt.Sprint(r.ranges) != fmt.Sprint(want) {
		t.Errorf("chunks %q, want %q", r.ranges, want)
	}
	if !bytes.Equal(r.held, data) || r.hash != crc32cOf(data) {
		t.Errorf("the server holds %d bytes (equal: %v), hash %q; want the %d bytes sent, hash %q", len(r.held), bytes.Equal(r.held, data), r.hash, len(data), crc32cOf(data))
	}
}

// TestChunkKeptNothing: a server (or a proxy dropping the Range header)
// answering every chunk 308 with no Range keeps nothing: the chunk is
// tried as often as any request, with backoff between tries, and then
// the write fails naming the endpoint and the likely cause, without
// blaming the store's settings.
func TestChunkKeptNothing(t *testing.T) {
	r := startResumable(t, &resumable{keep: func(int64, int) (int, bool) { return 0, false }})
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 3})
	start := time.Now()
	err := b.Create(context.Background(), "blobs/x", bytes.NewReader(randomBytes(gcsstore.PartSize+1)))
	d := time.Since(start)
	var pe *gcsstore.UploadProtocolError
	var e *gcsstore.Error
	if !errors.As(err, &pe) || !errors.As(err, &e) {
		t.Fatalf("want an *UploadProtocolError in a *gcsstore.Error, got %T %v", err, err)
	}
	for _, want := range []string{"the emulator at " + r.srv.URL, "kept no more of the chunk", "a proxy dropping the Range header?",
		"3 sends", "none of its bytes", "Re-running apply is safe"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "`store`") || strings.Contains(err.Error(), "--1") {
		t.Errorf("the error blames the store's settings or prints a negative byte: %v", err)
	}
	if len(r.ranges) != 3 {
		t.Errorf("%d chunks sent (%q), want 3: the backend's attempts", len(r.ranges), r.ranges)
	}
	if d < 300*time.Millisecond { // backoff(1) + backoff(2) is at least 100 + 200 ms
		t.Errorf("3 tries in %v: no backoff between them", d)
	}
}

// TestSessionElsewhere: a session URL (the Location of a resumable
// upload's opening) on another host than the endpoint is refused before
// any chunk, and the credentials' token with it, goes there.
func TestSessionElsewhere(t *testing.T) {
	var elsewhere sync.Map
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		elsewhere.Store(req.Method+" "+req.URL.Path, true)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)
	startResumable(t, &resumable{location: func() string { return other.URL + "/upload/storage/v1/b/bucket/o?upload_id=1" }})
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	err := b.Create(context.Background(), "blobs/x", bytes.NewReader(randomBytes(gcsstore.PartSize+1)))
	var pe *gcsstore.UploadProtocolError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "not on the endpoint") || !strings.Contains(err.Error(), other.URL) {
		t.Fatalf("want the session on %s refused, got %v", other.URL, err)
	}
	elsewhere.Range(func(k, _ any) bool {
		t.Errorf("a request went to the other host: %v", k)
		return true
	})

	// None at all: the same error type, blaming the endpoint or a proxy,
	// not the store's settings.
	startResumable(t, &resumable{location: func() string { return "" }})
	err = newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1}).Create(context.Background(), "blobs/x", bytes.NewReader(randomBytes(gcsstore.PartSize+1)))
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "gave no session URL") || strings.Contains(err.Error(), "`store`") ||
		!strings.Contains(err.Error(), "Re-running apply is safe") {
		t.Fatalf("want a missing session URL blamed on the endpoint, got %v", err)
	}
}

// TestLastChunkNotFound: a 404 to the only send of a resumable upload's
// last chunk (a session expired or cancelled) made no object: the write
// fails without asking whether the object is its own, which only a
// last chunk sent again (its first answer lost) calls for.
func TestLastChunkNotFound(t *testing.T) {
	r := startResumable(t, &resumable{})
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && !strings.HasSuffix(req.Header.Get("Content-Range"), "/*") {
			_, _ = io.Copy(io.Discard, req.Body) // read whole, as a server does
			w.WriteHeader(http.StatusNotFound)
			return
		}
		r.serve(w, req)
	})
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	err := b.Create(context.Background(), "blobs/x", bytes.NewReader(randomBytes(gcsstore.PartSize+1)))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("want the 404, got %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.gets {
		if strings.Contains(q, "fields=metadata") {
			t.Errorf("asked for the object's tag (%s) after a last chunk sent once", q)
		}
	}
}

// TestResumableUploadChecksum: a chunk of a resumable upload changed on
// its way (a byte flipped by a faulty proxy, router or NIC) is refused
// by the server, which checks the content against the CRC32C the last
// chunk states, and no object is made. (fake-gcs-server does not check
// a resumable upload's CRC32C.)
func TestResumableUploadChecksum(t *testing.T) {
	r := startResumable(t, &resumable{})
	flipped := false
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && !flipped {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			flipped = true // one request at a time: the chunks go in turn
			body[len(body)/2] ^= 1
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		r.serve(w, req)
	})
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	err := b.Create(context.Background(), "blobs/x", bytes.NewReader(randomBytes(gcsstore.PartSize+1)))
	if err == nil || !strings.Contains(err.Error(), "CRC32C") || !flipped {
		t.Fatalf("a chunk changed on the way (flipped: %v) was not refused for its CRC32C: %v", flipped, err)
	}
	if !strings.Contains(err.Error(), "changed on its way") || strings.Contains(err.Error(), "`store`") {
		t.Errorf("the error does not say the content changed on its way, or blames the store's settings: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || len(r.ranges) != 2 {
		t.Fatalf("object made: %v, chunks %q; want none made, of 2 chunks", r.done, r.ranges)
	}
}
