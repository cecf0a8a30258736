package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// EnvAzurite names the variable that holds the path of Azurite's blob
// server (azurite-blob), which `make test` sets from scripts/azurite.sh
// (installed once with npm; it runs on the machine's Node).
const EnvAzurite = "AZURITE_PATH"

// AzuriteAccount is the account every Azurite serves, and AzuriteKey its
// key: Azurite's well-known development account, public and the same for
// every install, so never a secret.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite blob server, keeping its data in a temp
// dir, so that a restart (Stop, Start) keeps what was stored.
type Azurite struct {
	Endpoint string // http://127.0.0.1:PORT

	t          testing.TB
	bin        string
	dir        string
	addr       string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
	containers atomic.Int64
}

// AzuritePath is azurite-blob's path from AZURITE_PATH; without it the
// test is skipped (under CI, failed), saying how to get it.
func AzuritePath(t testing.TB) string {
	return toolPath(t, EnvAzurite, "Azurite (azurite-blob)", "scripts/azurite.sh")
}

// StartAzurite starts Azurite's blob server for the test and stops it when
// the test ends. Without AZURITE_PATH the test is skipped (under CI,
// failed), saying how to get it.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := AzuritePath(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // frees the port for the server
		t.Fatal(err)
	}
	a := &Azurite{t: t, bin: bin, dir: t.TempDir(), addr: addr, Endpoint: "http://" + addr}
	a.Start()
	t.Cleanup(a.Stop)
	return a
}

// Start starts (or restarts) the server on the same address and data.
func (a *Azurite) Start() {
	a.t.Helper()
	if err := a.start(); err != nil {
		a.t.Fatal(err)
	}
}

// StartSharedAzurite starts Azurite's blob server for a whole test
// process (a TestMain's, or once for many parallel tests, which cannot
// each set AZURE_STORAGE_CONNECTION_STRING): the caller calls stop when
// the tests are done. bin is azurite-blob's path.
func StartSharedAzurite(bin string) (a *Azurite, stop func(), err error) {
	dir, err := os.MkdirTemp("", "immutable-azurite-")
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // frees the port for the server
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	a = &Azurite{bin: bin, dir: dir, addr: addr, Endpoint: "http://" + addr}
	if err := a.start(); err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	return a, func() {
		a.Stop()
		_ = os.RemoveAll(dir) // a temp dir: nothing to keep
	}, nil
}

func (a *Azurite) start() error {
	if a.cmd != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(a.addr)
	data := filepath.Join(a.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	// --skipApiVersionCheck: the SDK speaks a newer API version than a
	// pinned Azurite knows, and Azurite refuses those unless told.
	cmd := exec.Command(a.bin, "--blobHost", host, "--blobPort", port, "--location", data,
		"--skipApiVersionCheck", "--disableTelemetry", "--disableProductStyleUrl", "--silent")
	logf, err := os.Create(filepath.Join(a.dir, fmt.Sprintf("azurite-%d.log", time.Now().UnixNano())))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // nothing was written
		return fmt.Errorf("starting azurite-blob: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		a.waitErr = cmd.Wait()
		_ = logf.Close() // the server wrote it; nothing buffered here
		close(exited)
	}()
	a.cmd, a.exited = cmd, exited
	// Node takes a second or two to load it: wait until it listens, until
	// it exits (a crash fails at once, with its log), or until the
	// deadline.
	const limit = 60 * time.Second
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", a.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close() // only probed
			return nil
		}
		select {
		case <-exited:
			a.cmd = nil
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("azurite-blob exited before listening on %s (%v):\n%s", a.addr, a.waitErr, b)
		case <-deadline.C:
			a.Stop()
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("azurite-blob did not listen on %s within %v:\n%s", a.addr, limit, b)
		case <-tick.C:
		}
	}
}

// Stop kills the server, as a crash or an outage would.
func (a *Azurite) Stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Kill() // fails only if it already exited, which <-a.exited covers
	<-a.exited
	a.cmd = nil
}

// ConnectionString is the connection string of the development account
// on the server at endpoint (a.Endpoint, or a proxy in front of it).
func ConnectionString(endpoint string) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s/%s;",
		AzuriteAccount, AzuriteKey, endpoint, AzuriteAccount)
}

// Env sets AZURE_STORAGE_CONNECTION_STRING to the server's for the test.
func (a *Azurite) Env(t testing.TB) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", ConnectionString(a.Endpoint))
}

// NewContainer creates an empty container and returns its name.
func (a *Azurite) NewContainer(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, a.containers.Add(1))
	c, err := container.NewClientFromConnectionString(ConnectionString(a.Endpoint), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
	return name
}

// Count starts a counting proxy in front of a for the test; its Call
// paths are /devstoreaccount1/CONTAINER/BLOB.
func (a *Azurite) Count(t testing.TB) *Counter { return startProxy(t, a.Endpoint, nil, 0, nil) }

// Proxy starts a counting proxy in front of a for the test that delays
// each request by delay (a round trip to an account in the same region is
// about 20 ms).
func (a *Azurite) Proxy(t testing.TB, delay time.Duration) *Counter {
	return startProxy(t, a.Endpoint, nil, delay, nil)
}

// Faulty starts a counting proxy in front of a for the test that does to
// each request what faults decides.
func (a *Azurite) Faulty(t testing.TB, faults FaultFunc) *Counter {
	return startProxy(t, a.Endpoint, nil, 0, faults)
}
