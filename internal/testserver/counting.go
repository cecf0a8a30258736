package testserver

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Counter is an HTTP proxy in front of an S3 server that counts the
// requests passing through it, by method and object key: request counts
// are facts a test asserts ("a rollback downloads only the changed
// file"), so a regression that adds a request per file fails a test.
type Counter struct {
	// Endpoint is the proxy's URL, to configure instead of the server's.
	Endpoint string

	mu    sync.Mutex
	calls []Call
}

// Call is one request seen by a Counter.
type Call struct {
	Method string
	Path   string // the URL path, /bucket/key with path-style addressing
	Query  string
}

// Count starts a counting proxy in front of s for the test.
func (s *S3) Count(t testing.TB) *Counter {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &Counter{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.calls = append(c.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery})
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.Endpoint = srv.URL
	return c
}

// Reset forgets the requests counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
}

// Calls returns the requests counted since the last Reset whose method is
// method ("" for any) and whose path contains part ("" for any).
func (c *Counter) Calls(method, part string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, call := range c.calls {
		if (method == "" || call.Method == method) && strings.Contains(call.Path, part) {
			out = append(out, call)
		}
	}
	return out
}
