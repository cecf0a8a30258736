package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PlainHTTPError is the refusal of a plain-HTTP request to a registry that
// is neither loopback nor listed in Options.PlainHTTP. go-containerregistry
// itself falls back to HTTP for private (RFC 1918) addresses and *.local
// names; this package does not.
type PlainHTTPError struct {
	Host string
}

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("plain HTTP to %s refused: registries other than loopback ones are reached over HTTPS only; "+
		"serve it over HTTPS, or set plain_http = true in the provider's registry block for %s", e.Host, e.Host)
}

// policy is the transport every request goes through last, just before
// the network: it refuses plain HTTP to any host that is not loopback or
// listed, and reports blob outcomes to a push that asks (see observe).
type policy struct {
	base  http.RoundTripper
	plain map[string]bool // lower-cased host:port or host (any port)
}

func newPolicy(o Options) (*policy, error) {
	base, err := baseTransport(o)
	if err != nil {
		return nil, err
	}
	p := &policy{base: base, plain: map[string]bool{}}
	for _, h := range o.PlainHTTP {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.Contains(h, "/") {
			return nil, fmt.Errorf("plain-HTTP registry %q: want host or host:port, no scheme or path", h)
		}
		p.plain[h] = true
	}
	return p, nil
}

// plainAllowed reports whether host (host or host:port) may be reached
// over plain HTTP.
func (p *policy) plainAllowed(host string) bool {
	host = strings.ToLower(host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if isLoopback(name) {
		return true
	}
	return p.plain[host] || p.plain[name]
}

// isLoopback: localhost, 127.0.0.0/8 and ::1; not *.localhost names,
// which resolve where the resolver says.
func isLoopback(name string) bool {
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

func (p *policy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !p.plainAllowed(req.URL.Host) {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body it does not send
		}
		return nil, &PlainHTTPError{Host: req.URL.Host}
	}
	resp, err := p.base.RoundTrip(req)
	if err == nil {
		if o, ok := req.Context().Value(observerKey{}).(*observer); ok {
			o.see(req, resp)
		}
	}
	return resp, err
}

// baseTransport is o.Transport, or go-containerregistry's default, with
// o.CAFile trusted besides the system's roots.
func baseTransport(o Options) (http.RoundTripper, error) {
	rt := o.Transport
	if rt == nil {
		rt = remote.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		if o.CAFile != "" {
			return nil, fmt.Errorf("CA file %s: the transport is a %T, not an *http.Transport whose roots can be extended", o.CAFile, rt)
		}
		return rt, nil // a test's own transport
	}
	t = t.Clone()
	t.ResponseHeaderTimeout = o.ResponseTimeout
	if t.ResponseHeaderTimeout <= 0 {
		t.ResponseHeaderTimeout = DefaultResponseTimeout
	}
	if o.CAFile == "" {
		return t, nil
	}
	pemBytes, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the registry CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool() // no system pool (Windows before Go 1.18 semantics, a bare container): the CA alone
	}
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("registry CA file %s holds no PEM certificate: give a PEM bundle (-----BEGIN CERTIFICATE-----)", o.CAFile)
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	t.TLSClientConfig.RootCAs = roots
	return t, nil
}

// observerKey carries an *observer in a request's context.
type observerKey struct{}

// observer learns, from the requests go-containerregistry makes for one
// blob, whether the registry had it (HEAD 200) or mounted it (POST with
// mount, 201).
type observer struct {
	mu                sync.Mutex
	existing, mounted bool
}

func (o *observer) see(req *http.Request, resp *http.Response) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/blobs/") && resp.StatusCode == http.StatusOK:
		o.existing = true
	case req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		o.mounted = true
	}
}

func (o *observer) outcome() (existing, mounted bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.existing, o.mounted
}

func observe(ctx context.Context) (context.Context, *observer) {
	o := &observer{}
	return context.WithValue(ctx, observerKey{}, o), o
}

// errPlainHTTP reports whether err is (or wraps) a plain-HTTP refusal.
func errPlainHTTP(err error) (*PlainHTTPError, bool) {
	var pe *PlainHTTPError
	return pe, errors.As(err, &pe)
}
