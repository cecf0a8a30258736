package testserver

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The variables that hold the paths of the CNCF distribution registry and
// of crane, which `make test` sets from scripts/registry.sh and
// scripts/crane.sh.
const (
	EnvRegistry = "REGISTRY_PATH"
	EnvCrane    = "CRANE_PATH"
)

// RegistryOptions configure a test registry.
type RegistryOptions struct {
	// Users, when not empty, turns on basic authentication (an htpasswd
	// file, bcrypt) with these usernames and passwords; else the registry
	// is anonymous.
	Users map[string]string
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost
	// signed by a CA made for the test (Registry.CAFile).
	TLS bool
}

// Registry is a running CNCF distribution registry (the reference OCI
// registry, Apache-2.0) with filesystem storage in a temp dir, on
// 127.0.0.1.
type Registry struct {
	// Host is "127.0.0.1:port", as a reference spells the registry.
	Host string
	// Endpoint is "http://127.0.0.1:port", or https:// with TLS.
	Endpoint string
	// CAFile is the PEM of the CA that signed the server's certificate
	// (TLS only).
	CAFile string
	// Root is the storage directory.
	Root string

	tlsConfig *tls.Config // the server's certificate and the CA as RootCAs (TLS only)
}

// toolPath is the binary env names, or a skip (or, under CI, a failure)
// saying how to get one.
func toolPath(t testing.TB, env, what, script string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin != "" {
		return bin
	}
	msg := fmt.Sprintf("%s test: set %s to a %s binary (make test builds one with %s)", what, env, what, script)
	if os.Getenv("CI") != "" {
		t.Fatal("CI: " + msg) // CI builds every tool: a missing one is a broken setup, not a reason to skip
	}
	t.Skip(msg)
	return ""
}

// CranePath is crane's path from CRANE_PATH; without it the test is
// skipped (under CI, failed), saying how to get one.
func CranePath(t testing.TB) string {
	return toolPath(t, EnvCrane, "crane", "scripts/crane.sh")
}

// listening is the line the registry logs once it listens.
var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// RegistryConfig is the configuration of a registry storing under root
// and listening on a free port of 127.0.0.1, which it logs ("listening
// on 127.0.0.1:PORT"); upload locations are relative, so they go through
// a proxy in front of it. (The bench's registry uses it too.)
func RegistryConfig(root string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  relativeurls: true
`, root)
}

// StartRegistry starts a registry for the test and stops it when the
// test ends. Without REGISTRY_PATH the test is skipped (under CI,
// failed), saying how to run it.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	bin := toolPath(t, EnvRegistry, "registry", "scripts/registry.sh")
	dir := t.TempDir()
	r := &Registry{Root: filepath.Join(dir, "storage")}
	cfg := RegistryConfig(r.Root)
	if o.TLS {
		caFile, certFile, keyFile, tc := makeCerts(t, dir)
		r.CAFile, r.tlsConfig = caFile, tc
		cfg += fmt.Sprintf("  tls:\n    certificate: %q\n    key: %q\n", certFile, keyFile)
	}
	if len(o.Users) > 0 {
		htpasswd := filepath.Join(dir, "htpasswd")
		writeHtpasswd(t, htpasswd, o.Users)
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: immutable-test\n    path: %q\n", htpasswd)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", cfgFile)
	// No traces exported anywhere (the default exporter is OTLP to
	// localhost:4318).
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logf, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the registry: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		_ = pw.Close() // ends the log reader; closing a pipe's writer cannot fail
		close(exited)
	}()
	// The log goes to the file; the address it listens on (it picks a
	// free port itself, so no other process can take it first) is the
	// signal that it is ready.
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		defer func() { _ = logf.Close() }() // the registry's log only
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintln(logf, line) // a lost log line loses only a diagnostic
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line past the scanner's limit: keep the registry from blocking
	}()
	stop := func() {
		_ = cmd.Process.Kill() // fails only if it already exited, which <-exited covers
		<-exited
		<-logDone
	}
	readLog := func() string {
		b, _ := os.ReadFile(logf.Name())
		return string(b)
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	select {
	case a := <-addr:
		r.Host = a
	case <-exited:
		<-logDone
		t.Fatalf("the registry exited before listening (%v):\n%s", waitErr, readLog())
	case <-deadline.C:
		stop()
		t.Fatalf("the registry did not listen within 20s:\n%s", readLog())
	}
	t.Cleanup(stop)
	r.Endpoint = "http://" + r.Host
	if o.TLS {
		r.Endpoint = "https://" + r.Host
	}
	return r
}

// Count starts a counting proxy in front of r for the test, serving HTTPS
// with r's certificate when r does; its Host replaces r's in references.
func (r *Registry) Count(t testing.TB) *Counter {
	return startProxy(t, r.Endpoint, r.tlsConfig, 0, nil)
}

// Faulty starts a counting proxy in front of r for the test that does to
// each request what faults decides.
func (r *Registry) Faulty(t testing.TB, faults FaultFunc) *Counter {
	return startProxy(t, r.Endpoint, r.tlsConfig, 0, faults)
}

// writeHtpasswd writes an htpasswd file of users with bcrypt hashes, the
// only kind the registry reads.
func writeHtpasswd(t testing.TB, path string, users map[string]string) {
	t.Helper()
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// makeCerts makes a CA and a server certificate it signs for 127.0.0.1,
// ::1 and localhost, writes the CA's PEM, the certificate's and its key's
// into dir, and returns their paths and a server config trusting the CA.
func makeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string, server *tls.Config) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "immutable test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		b    []byte
	}{{caFile, caPEM}, {certFile, certPEM}, {keyFile, keyPEM}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return caFile, certFile, keyFile, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}
