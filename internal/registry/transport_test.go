package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func TestPlainAllowed(t *testing.T) {
	p, err := newPolicy(Options{PlainHTTP: []string{"registry.lan:5000", "10.1.2.3", "Build.Internal"}})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "127.0.0.1:5000": true, "127.3.4.5": true, "[::1]:5000": true, "::1": true,
		"registry.lan:5000": true, "registry.lan:5001": false, "registry.lan": false,
		"10.1.2.3:5000": true, "10.1.2.3": true, "10.1.2.4:5000": false,
		"build.internal:443": true,
		"192.168.1.10:5000":  false, "172.16.0.1": false, "foo.localhost:5000": false, "registry.local": false,
		"ghcr.io": false, "[::2]:5000": false,
	} {
		if got := p.plainAllowed(host); got != want {
			t.Errorf("plainAllowed(%q) = %v, want %v", host, got, want)
		}
	}
	if _, err := newPolicy(Options{PlainHTTP: []string{"http://registry.lan"}}); err == nil {
		t.Error("a plain-HTTP entry with a scheme was accepted")
	}
}

// redirected is a transport that dials addr whatever the request names:
// a registry on 127.0.0.1 stands for one at any address.
func redirected(addr string) *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// TestPlainHTTPRefused: a registry at a private address (which
// go-containerregistry would reach over HTTP) or at a name is reached
// over plain HTTP only when listed; unlisted, not one request reaches it
// and the error says how to allow it.
func TestPlainHTTPRefused(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	count := srv.Count(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	if _, err := newClient(t, Options{}).Push(context.Background(), count.Host()+"/app", img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"10.0.0.7:5000", "192.168.10.20:5000", "registry.example:5000"} {
		count.Reset()
		ref := host + "/app@" + img.Digest.String()
		_, err := newClient(t, Options{Transport: redirected(count.Host())}).Resolve(context.Background(), ref)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: err %v, want an *Error", host, err)
		}
		if e.Kind != KindPlainHTTP || !strings.Contains(err.Error(), "set plain_http = true in the provider's registry block") {
			t.Errorf("%s: %v, want plain HTTP refused", host, err)
		}
		// An address is tried over HTTP too (and refused by the policy);
		// a name over HTTPS only (which the server does not speak).
		if _, refused := errPlainHTTP(err); refused == strings.HasPrefix(host, "registry.") {
			t.Errorf("%s: refused by the policy: %v", host, refused)
		}
		if calls := count.Calls("", ""); len(calls) != 0 {
			t.Errorf("%s: %d requests reached the registry: %v", host, len(calls), calls)
		}

		c := newClient(t, Options{Transport: redirected(count.Host()), PlainHTTP: []string{host}})
		r, err := c.Resolve(context.Background(), ref)
		if err != nil || r.Digest != img.Digest {
			t.Errorf("%s listed: %v %v", host, r, err)
		}
	}
	// localhost needs no listing.
	port := count.Host()[strings.LastIndex(count.Host(), ":"):]
	if _, err := newClient(t, Options{}).Resolve(context.Background(), "localhost"+port+"/app@"+img.Digest.String()); err != nil {
		t.Errorf("localhost: %v", err)
	}
}

// TestCAFile: a TLS registry whose CA is given is reached; without it the
// error says its certificate is not trusted and to give the CA.
func TestCAFile(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{TLS: true, Users: map[string]string{testUser: testPassword}})
	count := srv.Count(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	creds := []Credential{{Registry: count.Host(), Username: testUser, Password: testPassword}}
	c := newClient(t, Options{CAFile: srv.CAFile, Credentials: creds})
	if _, err := c.Push(context.Background(), count.Host()+"/app", img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}
	if n := len(count.Calls("PUT", "/manifests/")); n != 1 {
		t.Errorf("%d manifest PUTs over HTTPS, want 1", n)
	}

	_, err := newClient(t, Options{Credentials: creds}).Resolve(context.Background(), count.Host()+"/app@"+img.Digest.String())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUntrusted || !strings.Contains(err.Error(), "as ca_file in the provider's registry block") || strings.Contains(err.Error(), testPassword) {
		t.Errorf("without the CA: %v, want an untrusted certificate", err)
	}

	if _, err := New(Options{CAFile: srv.Root}); err == nil {
		t.Error("a CA file that is a directory was accepted")
	}
	notPEM := t.TempDir() + "/ca.pem"
	writeFile(t, notPEM, "not a certificate", 0o600)
	if _, err := New(Options{CAFile: notPEM}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file without PEM: %v", err)
	}
}

// TestUnreachable: a registry that does not listen is unreachable, named.
func TestUnreachable(t *testing.T) {
	noDockerConfig(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(t, Options{}).Resolve(context.Background(), addr+"/app:v1")
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable || !strings.Contains(err.Error(), "cannot reach the registry at "+addr) {
		t.Errorf("err %v, want unreachable at %s", err, addr)
	}
}

// TestStalledRegistryTimesOut: a registry that accepts a request and
// never answers fails the operation after ResponseTimeout, naming the
// registry, instead of hanging plan or apply.
func TestStalledRegistryTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // stalled, as a paused registry is
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := New(Options{ResponseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Resolve(context.Background(), host+"/web:latest"); done <- err }()
	select {
	case err := <-done:
		var re *Error
		if !errors.As(err, &re) || re.Kind != KindStalled || !strings.Contains(err.Error(), "did not answer within") || !strings.Contains(err.Error(), host) {
			t.Fatalf("Resolve of a stalled registry: %v; want a stalled registry named %s", err, host)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Resolve of a stalled registry did not return within 30 s")
	}
}
