package testserver

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Counter is an HTTP proxy in front of an S3 server that counts the
// requests passing through it, by method and object key: request counts
// are facts a test asserts ("a rollback downloads only the changed
// file"), so a regression that adds a request per file fails a test.
//
// It also measures what a connection pool does: the most requests it saw
// in flight at once, and how many connections were opened to it. With a
// Delay it is a latency injector too: every request waits that long
// before it is forwarded, as over a network with that round trip.
type Counter struct {
	// Endpoint is the proxy's URL, to configure instead of the server's.
	Endpoint string

	mu          sync.Mutex
	calls       []Call
	inFlight    int
	maxInFlight int
	conns       int
	open        int
	maxOpen     int
	notify      func(Call)
}

// Notify calls f with every request from now on, as it arrives (before
// it is forwarded): a signal for a test to act on.
func (c *Counter) Notify(f func(Call)) {
	c.mu.Lock()
	c.notify = f
	c.mu.Unlock()
}

// Call is one request seen by a Counter.
type Call struct {
	Method string
	Path   string // the URL path, /bucket/key with path-style addressing
	Query  string
}

// Count starts a counting proxy in front of s for the test.
func (s *S3) Count(t testing.TB) *Counter { return s.Proxy(t, 0) }

// Proxy starts a counting proxy in front of s for the test that delays
// each request by delay (a round trip to a bucket in the same region is
// about 20 ms).
func (s *S3) Proxy(t testing.TB, delay time.Duration) *Counter {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &Counter{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
		c.mu.Lock()
		c.calls = append(c.calls, call)
		c.inFlight++
		c.maxInFlight = max(c.maxInFlight, c.inFlight)
		notify := c.notify
		c.mu.Unlock()
		if notify != nil {
			notify(call)
		}
		defer func() {
			c.mu.Lock()
			c.inFlight--
			c.mu.Unlock()
		}()
		if delay > 0 {
			// The injected round trip: the request waits as it would on
			// the wire, unless its client gives up first.
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch st {
		case http.StateNew:
			c.conns++
			c.open++
			c.maxOpen = max(c.maxOpen, c.open)
		case http.StateClosed, http.StateHijacked:
			c.open--
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c.Endpoint = srv.URL
	return c
}

// Reset forgets the requests counted so far, the most seen in flight,
// and the connections opened.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.calls = nil
	c.maxInFlight = c.inFlight
	c.conns = 0
	c.maxOpen = c.open
	c.mu.Unlock()
}

// MaxOpenConns is the most connections seen open at once since Reset.
func (c *Counter) MaxOpenConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxOpen
}

// MaxInFlight is the most requests seen in flight at once since Reset.
func (c *Counter) MaxInFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxInFlight
}

// Conns is the number of connections opened to the proxy since Reset.
func (c *Counter) Conns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
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
