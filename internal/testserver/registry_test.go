package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
)

func get(t *testing.T, c *http.Client, url, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // only the status is read
	return resp.StatusCode
}

// TestRegistryAnonymous: an anonymous registry answers /v2/, and the
// counting proxy in front of it counts the request.
func TestRegistryAnonymous(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	if !strings.HasPrefix(r.Host, "127.0.0.1:") || r.Endpoint != "http://"+r.Host {
		t.Fatalf("host %q endpoint %q", r.Host, r.Endpoint)
	}
	if got := get(t, http.DefaultClient, r.Endpoint+"/v2/", "", ""); got != http.StatusOK {
		t.Fatalf("GET /v2/: %d", got)
	}
	c := r.Count(t)
	if got := get(t, http.DefaultClient, c.Endpoint+"/v2/", "", ""); got != http.StatusOK {
		t.Fatalf("GET /v2/ through the proxy: %d", got)
	}
	if n := len(c.Calls(http.MethodGet, "/v2/")); n != 1 {
		t.Fatalf("counted %d GET /v2/, want 1", n)
	}
}

// TestRegistryAuthTLS: with users and TLS, the registry answers only over
// HTTPS trusting the test CA, and only with a user's password.
func TestRegistryAuthTLS(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	if r.Endpoint != "https://"+r.Host {
		t.Fatalf("endpoint %q", r.Endpoint)
	}
	pemBytes, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CAFile holds no certificate")
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	if _, err := http.DefaultClient.Get(r.Endpoint + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	if got := get(t, trusting, r.Endpoint+"/v2/", "", ""); got != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d, want 401", got)
	}
	if got := get(t, trusting, r.Endpoint+"/v2/", "alice", "wrong"); got != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", got)
	}
	if got := get(t, trusting, r.Endpoint+"/v2/", "alice", "s3cret"); got != http.StatusOK {
		t.Fatalf("alice: %d, want 200", got)
	}
	c := r.Count(t)
	if !strings.HasPrefix(c.Endpoint, "https://") {
		t.Fatalf("proxy endpoint %q, want https", c.Endpoint)
	}
	if got := get(t, trusting, c.Endpoint+"/v2/", "alice", "s3cret"); got != http.StatusOK {
		t.Fatalf("alice through the proxy: %d, want 200", got)
	}
}
