package testserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// EnvFakeGCS names the variable that holds the fake-gcs-server binary's
// path, which `make test` sets from scripts/fake-gcs-server.sh (built once
// from the Go module proxy).
const EnvFakeGCS = "FAKE_GCS_SERVER_PATH"

// GCS is a running fake-gcs-server: Google Cloud Storage's JSON API on
// 127.0.0.1, over plain HTTP, with no authentication, its objects in a
// temp dir (so that a restart keeps them).
type GCS struct {
	Endpoint string // http://127.0.0.1:PORT

	t       testing.TB
	bin     string
	root    string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	buckets atomic.Int64
}

// GCSPath is fake-gcs-server's path from FAKE_GCS_SERVER_PATH; without it
// the test is skipped (under CI, failed), saying how to get one.
func GCSPath(t testing.TB) string {
	return toolPath(t, EnvFakeGCS, "fake-gcs-server", "scripts/fake-gcs-server.sh")
}

// StartGCS starts a server for the test and stops it when the test ends.
// Without FAKE_GCS_SERVER_PATH the test is skipped (under CI, failed),
// saying how to run it.
func StartGCS(t testing.TB) *GCS {
	t.Helper()
	bin := GCSPath(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // frees the port for the server
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &GCS{t: t, bin: bin, root: filepath.Join(dir, "data"), addr: addr, Endpoint: "http://" + addr}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// LaunchGCS starts a server for a whole test binary (a TestMain), its data
// under dir, on bin, a fake-gcs-server binary; the caller stops it. Tests
// running in parallel share it, each in buckets of its own, with
// STORAGE_EMULATOR_HOST set once for the process.
func LaunchGCS(bin, dir string) (*GCS, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // frees the port for the server
		return nil, err
	}
	s := &GCS{bin: bin, root: filepath.Join(dir, "data"), addr: addr, Endpoint: "http://" + addr}
	return s, s.start()
}

// Start starts (or restarts) the server on the same address and data.
func (s *GCS) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *GCS) start() error {
	if s.cmd != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command(s.bin, "-scheme", "http", "-host", host, "-port", port,
		"-backend", "filesystem", "-filesystem-root", s.root, "-log-level", "warn")
	logf, err := os.Create(filepath.Join(filepath.Dir(s.root), fmt.Sprintf("fake-gcs-server-%d.log", time.Now().UnixNano())))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // nothing was written
		return fmt.Errorf("starting fake-gcs-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		_ = logf.Close() // the server wrote it; nothing buffered here
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	// Ready when its API answers a bucket listing; a crash fails the test
	// at once, with its log; so does the deadline.
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		res, err := client.Get(s.Endpoint + "/storage/v1/b")
		if err == nil {
			_ = res.Body.Close() // only probed
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("fake-gcs-server exited before answering on %s (%v):\n%s", s.addr, s.waitErr, b)
		case <-deadline.C:
			s.Stop()
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("fake-gcs-server did not answer on %s within 20s:\n%s", s.addr, b)
		case <-tick.C:
		}
	}
}

// Stop kills the server, as a crash or an outage would.
func (s *GCS) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only if it already exited, which <-s.exited covers
	<-s.exited
	s.cmd = nil
}

// Env points the gs:// backend at the server (STORAGE_EMULATOR_HOST)
// for the test: no credentials are looked for or sent. A variable that
// already holds it (set for the process by a TestMain) is left alone, so
// that a parallel test may call it.
func (s *GCS) Env(t testing.TB) {
	if os.Getenv(gcsstore.EnvEmulator) != s.Endpoint {
		t.Setenv(gcsstore.EnvEmulator, s.Endpoint)
	}
}

// Put writes data to the object name of bucket, over whatever is there:
// a test acting behind the store's back (tampering with an object).
func (s *GCS) Put(t testing.TB, bucket, name string, data []byte) {
	t.Helper()
	u := s.Endpoint + "/upload/storage/v1/b/" + url.PathEscape(bucket) + "/o?" +
		url.Values{"uploadType": {"media"}, "name": {name}}.Encode()
	s.call(t, http.MethodPost, u, "application/octet-stream", data)
}

// NewBucket creates an empty bucket and returns its name. It sets Env.
func (s *GCS) NewBucket(t testing.TB) string {
	t.Helper()
	s.Env(t)
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, s.buckets.Add(1))
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	s.call(t, http.MethodPost, s.Endpoint+"/storage/v1/b?project=test-project", "application/json", body)
	return name
}

// call sends a request to the server's JSON API, failing the test unless
// it succeeds.
func (s *GCS) call(t testing.TB, method, u, contentType string, body []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }() // read whole below
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, u, res.Status, answer)
	}
}

// Count starts a counting proxy in front of the server for the test;
// point STORAGE_EMULATOR_HOST at its Endpoint to count a backend's requests.
func (s *GCS) Count(t testing.TB) *Counter { return startProxy(t, s.Endpoint, nil, 0, nil) }

// Faulty starts a counting proxy in front of the server for the test that
// does to each request what faults decides.
func (s *GCS) Faulty(t testing.TB, faults FaultFunc) *Counter {
	return startProxy(t, s.Endpoint, nil, 0, faults)
}

// MakesVisible reports whether c is a request that makes an object
// visible: a single-request (multipart) upload, or the last chunk of a
// resumable one (its Content-Range states the total; the backend sends
// chunks with PUT, as GCS documents; Google's library sent POST).
func MakesVisible(c Call) bool {
	switch {
	case c.Method == http.MethodPost && strings.Contains(c.Query, "uploadType=multipart"):
		return true
	case (c.Method == http.MethodPut || c.Method == http.MethodPost) && strings.Contains(c.Query, "upload_id="):
		r := c.Header.Get("Content-Range")
		return r != "" && !strings.HasSuffix(r, "/*")
	}
	return false
}
