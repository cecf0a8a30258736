package testserver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Counter is an HTTP proxy in front of an S3 server or a registry that
// counts the requests passing through it, by method and path (an object
// key, a registry's /v2/<repository>/blobs/uploads/): request counts
// are facts a test asserts ("a rollback downloads only the changed
// file"), so a regression that adds a request per file fails a test.
//
// It also measures what a connection pool does: the most requests it saw
// in flight at once, and how many connections were opened to it. With a
// Delay it is a latency injector too: every request waits that long
// before it is forwarded, as over a network with that round trip. With a
// FaultFunc (Faulty) it injects the failures of a real network and a busy
// server: requests answered 503 SlowDown, and requests carried out whose
// answer is lost on the way back.
type Counter struct {
	// Endpoint is the proxy's URL, to configure instead of the server's.
	Endpoint string

	mu          sync.Mutex
	calls       []*Call
	seen        map[string]int // tries of each request (method, path, query) so far
	inFlight    int
	maxInFlight int
	conns       int
	open        int
	maxOpen     int
	notify      func(Call)
	faults      FaultFunc
}

// Notify calls f with every request from now on, as it arrives (before
// it is forwarded): a signal for a test to act on.
func (c *Counter) Notify(f func(Call)) {
	c.mu.Lock()
	c.notify = f
	c.mu.Unlock()
}

// SetFaults replaces the proxy's FaultFunc (nil: none) for the requests
// that arrive from now on.
func (c *Counter) SetFaults(f FaultFunc) {
	c.mu.Lock()
	c.faults = f
	c.mu.Unlock()
}

// Call is one request seen by a Counter.
type Call struct {
	Method string
	Path   string // the URL path: /bucket/key with path-style addressing, /v2/… at a registry
	Query  string
	Header http.Header // the request's headers (a GCS upload's Content-Range says whether it is the last chunk)
	// Fault is what the proxy did to it; Status is the answer the client
	// got, 0 when it got none (LoseAnswer) or none yet.
	Fault  Fault
	Status int
}

// Fault is what a fault-injecting proxy does to one request.
type Fault int

const (
	// Pass forwards the request and passes its answer on.
	Pass Fault = iota
	// SlowDown answers 503 SlowDown, as S3 does when it is asked too fast,
	// without forwarding the request: nothing was done.
	SlowDown
	// LoseAnswer forwards the request, waits until the server has carried
	// it out and answered, and then drops the client's connection instead
	// of passing the answer on: a write landed, and its writer cannot know.
	LoseAnswer
	// PreconditionFailed answers 412 PreconditionFailed without forwarding
	// the request: what S3 may answer a conditional write (a completion of
	// a multipart upload, say) retried after its first try landed, where
	// the server under test answers the retry otherwise.
	PreconditionFailed
	// TagImmutable answers 400 TAG_INVALID without forwarding the request:
	// what ECR answers a manifest PUT that would move a tag of a repository
	// with immutable tags.
	TagImmutable
	// ManifestInvalid answers 400 MANIFEST_INVALID, as a registry refusing
	// a manifest's content or media type does (the distribution spec's
	// error body), without forwarding the request.
	ManifestInvalid
	// UnsupportedMediaType answers 415 UNSUPPORTED, as registries that
	// know no OCI manifests do, without forwarding the request.
	UnsupportedMediaType
	// InternalError answers 500 UNKNOWN without forwarding the request: a
	// registry failing (its storage, say).
	InternalError
	// BadRequest answers 400 Bad Request, with no body, without
	// forwarding the request: a server refusing an operation it does not
	// implement (an Azure account without Blob Batch, say).
	BadRequest
	// Forbidden answers 403 Forbidden, with no body, without forwarding
	// the request: a server (or a proxy before it) refusing an operation
	// to these credentials (an Azure Blob Batch, say).
	Forbidden
	// FirstPartBusy forwards an Azure Blob Batch request, carried out
	// whole, and passes its answer on with the first sub-request's answer
	// made 503 ServerBusy: what Azure answers a sub-request when the
	// account is busy (here one that landed).
	FirstPartBusy
	// FirstPartDropped forwards an Azure Blob Batch request, carried out
	// whole, and passes its answer on without the first sub-request's
	// answer: a batch answer one part short (which the Azure SDK takes
	// for a failure of the whole batch).
	FirstPartDropped
	// FirstPartUnnamed forwards an Azure Blob Batch request, carried out
	// whole, and passes its answer on with the first sub-request's answer
	// stripped of its Content-ID: a batch answer that says nothing of one
	// delete.
	FirstPartUnnamed
)

func (f Fault) String() string {
	switch f {
	case SlowDown:
		return "503 SlowDown"
	case LoseAnswer:
		return "answer lost"
	case PreconditionFailed:
		return "412 PreconditionFailed"
	case TagImmutable:
		return "400 TAG_INVALID"
	case ManifestInvalid:
		return "400 MANIFEST_INVALID"
	case UnsupportedMediaType:
		return "415 UNSUPPORTED"
	case InternalError:
		return "500 UNKNOWN"
	case BadRequest:
		return "400 Bad Request"
	case Forbidden:
		return "403 Forbidden"
	case FirstPartBusy:
		return "first part 503 ServerBusy"
	case FirstPartDropped:
		return "first part dropped"
	case FirstPartUnnamed:
		return "first part unnamed"
	}
	return "pass"
}

// contentID is the Content-ID header line of a part of a multipart body.
var contentID = regexp.MustCompile(`(?im)^content-id:[^\n]*\n`)

// FaultFunc decides what the proxy does to a request; tries is how many
// times the same request (method, path and query) came before it, so 0
// for a first try and 1 for the client's first retry.
type FaultFunc func(c Call, tries int) Fault

// Shares is a FaultFunc that answers a share slowDown of requests with 503
// SlowDown and loses the answer of a share lose of them, on each of the
// first maxFaulty tries of a request; later tries pass, so a client that
// makes more than maxFaulty attempts always succeeds. Which requests fail
// is a function of seed and the request (not of timing or order): the same
// seed fails the same requests in every run.
func Shares(seed uint64, slowDown, lose float64, maxFaulty int) FaultFunc {
	return func(c Call, tries int) Fault {
		if tries >= maxFaulty {
			return Pass
		}
		h := sha256.Sum256(fmt.Appendf(nil, "%d %s %s?%s %d", seed, c.Method, c.Path, c.Query, tries))
		u := float64(binary.BigEndian.Uint64(h[:])>>11) / (1 << 53)
		switch {
		case u < slowDown:
			return SlowDown
		case u < slowDown+lose:
			return LoseAnswer
		}
		return Pass
	}
}

// slowDownBody is S3's answer to a client asking too fast.
const slowDownBody = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`

// preconditionFailedBody is S3's answer to a conditional write meeting an
// object.
const preconditionFailedBody = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>`

// registryFault is the status and body (the distribution spec's error
// format) a registry answers with for f.
func registryFault(f Fault) (int, string) {
	switch f {
	case ManifestInvalid:
		return http.StatusBadRequest, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"media type not accepted"}]}`
	case TagImmutable:
		// ECR's answer to a PUT moving an immutable tag.
		return http.StatusBadRequest, `{"errors":[{"code":"TAG_INVALID","message":"The image tag already exists in the repository and cannot be overwritten because the repository is immutable."}]}`
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType, `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`
	}
	return http.StatusInternalServerError, `{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`
}

// statusWriter remembers the status of the answer it passes on.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // not an interim 100 Continue
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Count starts a counting proxy in front of s for the test.
func (s *S3) Count(t testing.TB) *Counter { return s.proxy(t, 0, nil) }

// Proxy starts a counting proxy in front of s for the test that delays
// each request by delay (a round trip to a bucket in the same region is
// about 20 ms).
func (s *S3) Proxy(t testing.TB, delay time.Duration) *Counter { return s.proxy(t, delay, nil) }

// Faulty starts a counting proxy in front of s for the test that does to
// each request what faults decides.
func (s *S3) Faulty(t testing.TB, faults FaultFunc) *Counter { return s.proxy(t, 0, faults) }

func (s *S3) proxy(t testing.TB, delay time.Duration, faults FaultFunc) *Counter {
	t.Helper()
	return startProxy(t, s.Endpoint, nil, delay, faults)
}

// startProxy starts a counting proxy in front of endpoint for the test.
// With serverTLS it serves HTTPS with that config and reaches endpoint
// trusting serverTLS.RootCAs (the test CA); else it serves plain HTTP.
func startProxy(t testing.TB, endpoint string, serverTLS *tls.Config, delay time.Duration, faults FaultFunc) *Counter {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &Counter{seen: map[string]int{}, faults: faults}
	proxy := httputil.NewSingleHostReverseProxy(target)
	upstream := &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}
	if serverTLS != nil {
		upstream.TLSClientConfig = &tls.Config{RootCAs: serverTLS.RootCAs, MinVersion: tls.VersionTLS12}
	}
	proxy.Transport = upstream
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// A client that gave up (a cancelled publish) is no news.
		if !errors.Is(err, context.Canceled) {
			log.Printf("http: proxy error: %v", err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := &Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		id := call.Method + " " + call.Path + "?" + call.Query
		c.mu.Lock()
		tries := c.seen[id]
		c.seen[id]++
		if c.faults != nil {
			call.Fault = c.faults(*call, tries)
		}
		c.calls = append(c.calls, call)
		c.inFlight++
		c.maxInFlight = max(c.maxInFlight, c.inFlight)
		notify := c.notify
		c.mu.Unlock()
		if notify != nil {
			notify(*call)
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			c.mu.Lock()
			c.inFlight--
			if call.Fault != LoseAnswer {
				call.Status = sw.status
			}
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
		switch call.Fault {
		case SlowDown:
			_, _ = io.Copy(io.Discard, r.Body) // read whole, as a server does before it answers; the client sees the 503 either way
			sw.Header().Set("Content-Type", "application/xml")
			sw.WriteHeader(http.StatusServiceUnavailable)
			if r.Method != http.MethodHead {
				_, _ = io.WriteString(sw, slowDownBody) // the client may have gone; nothing to do about it
			}
		case PreconditionFailed:
			_, _ = io.Copy(io.Discard, r.Body)
			sw.Header().Set("Content-Type", "application/xml")
			sw.WriteHeader(http.StatusPreconditionFailed)
			_, _ = io.WriteString(sw, preconditionFailedBody) // the client may have gone; nothing to do about it
		case BadRequest, Forbidden:
			_, _ = io.Copy(io.Discard, r.Body) // as PreconditionFailed
			if call.Fault == Forbidden {
				sw.WriteHeader(http.StatusForbidden)
			} else {
				sw.WriteHeader(http.StatusBadRequest)
			}
		case FirstPartBusy, FirstPartDropped, FirstPartUnnamed:
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			body := rec.Body.String()
			if call.Fault == FirstPartBusy {
				// The first sub-response's status line, and an error code.
				body = strings.Replace(body, "HTTP/1.1 202 Accepted\r\n", "HTTP/1.1 503 Server Busy\r\nx-ms-error-code: ServerBusy\r\n", 1)
			} else if _, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type")); err == nil && params["boundary"] != "" {
				// Before the first delimiter, the first part, the rest.
				sep := "--" + params["boundary"]
				if parts := strings.Split(body, sep); len(parts) > 2 {
					if call.Fault == FirstPartDropped {
						parts = append(parts[:1], parts[2:]...)
					} else {
						parts[1] = contentID.ReplaceAllString(parts[1], "")
					}
					body = strings.Join(parts, sep)
				}
			}
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					sw.Header()[k] = v
				}
			}
			sw.WriteHeader(rec.Code)
			_, _ = io.WriteString(sw, body) // the client may have gone; nothing to do about it
		case TagImmutable, ManifestInvalid, UnsupportedMediaType, InternalError:
			_, _ = io.Copy(io.Discard, r.Body) // as PreconditionFailed
			status, body := registryFault(call.Fault)
			sw.Header().Set("Content-Type", "application/json")
			sw.WriteHeader(status)
			if r.Method != http.MethodHead {
				_, _ = io.WriteString(sw, body) // the client may have gone; nothing to do about it
			}
		case LoseAnswer:
			// Carried out to the end, the answer read and thrown away; then
			// the connection is dropped with nothing sent back (net/http
			// logs nothing for this panic).
			proxy.ServeHTTP(httptest.NewRecorder(), r)
			panic(http.ErrAbortHandler)
		default:
			proxy.ServeHTTP(sw, r)
		}
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
	if serverTLS != nil {
		srv.TLS = serverTLS
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	c.Endpoint = srv.URL
	return c
}

// Host is the proxy's host:port, as a registry reference spells it.
func (c *Counter) Host() string {
	_, host, _ := strings.Cut(c.Endpoint, "://")
	return host
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
			out = append(out, *call)
		}
	}
	return out
}
