package gcsstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// recorder is a server answering every request 200 "{}" and recording
// each request's URI as sent (escaped) and its headers.
type recorder struct {
	url     string
	mu      sync.Mutex
	uris    []string
	headers []http.Header
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.uris = append(r.uris, req.RequestURI)
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		_, _ = w.Write([]byte("{}")) // the client may have gone
	}))
	t.Cleanup(srv.Close)
	t.Setenv(gcsstore.EnvEmulator, srv.URL)
	r.url = srv.URL
	return r
}

// TestObjectNameEscaped: an object name goes in the URL's path with
// every byte but RFC 3986's unreserved characters escaped, as Google's
// library sends it: url.PathEscape leaves "+:@=&$" as they are, and a
// '+' may be read as a space.
func TestObjectNameEscaped(t *testing.T) {
	r := startRecorder(t)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	if _, err := b.Exists(context.Background(), "a+b:@=&$,;!'()* é~_.-"); err != nil {
		t.Fatal(err)
	}
	want := "/storage/v1/b/bucket/o/some%2Fprefix%2Fa%2Bb%3A%40%3D%26%24%2C%3B%21%27%28%29%2A%20%C3%A9~_.-?fields=name"
	if len(r.uris) != 1 || r.uris[0] != want {
		t.Fatalf("requested %q, want %q", r.uris, want)
	}
}

// TestUserAgent: requests name the provider and its version (the
// build's, "dev" when it has none: a test binary's).
func TestUserAgent(t *testing.T) {
	r := startRecorder(t)
	if _, err := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1}).Exists(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	want := "terraform-provider-immutable/"
	if bi, ok := debug.ReadBuildInfo(); !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		want += "dev"
	} else {
		want += bi.Main.Version
	}
	if ua := r.headers[0].Get("User-Agent"); ua != want {
		t.Errorf("User-Agent %q, want %q", ua, want)
	}
}
