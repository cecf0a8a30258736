package gcsstore_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// blackhole is a TCP proxy to addr that, once frozen, passes nothing on
// either way and keeps the connections open: a NAT or firewall that
// dropped them without a word.
type blackhole struct {
	l      net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startBlackhole(t *testing.T, addr string) *blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &blackhole{l: l}
	t.Cleanup(func() {
		_ = l.Close() // stops the accept loop
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			_ = c.Close() // ends its pipe
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close() // the client sees the failure
				continue
			}
			h.mu.Lock()
			h.conns = append(h.conns, c, u)
			h.mu.Unlock()
			go h.pipe(u, c)
			go h.pipe(c, u)
		}
	}()
	return h
}

// pipe copies src to dst until frozen, then reads and drops.
func (h *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			_ = dst.Close() // the other side sees the end
			return
		}
		if !h.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				_ = src.Close() // as above
				return
			}
		}
	}
}

// TestDeadConnection: an object streamed over HTTP/2 whose connection
// goes dead (nothing more arrives, pings unanswered) fails the read once
// the health check's ping goes unanswered, instead of hanging it.
func TestDeadConnection(t *testing.T) {
	gcsstore.SetPing(t, 200*time.Millisecond, 300*time.Millisecond)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("the request came over %s, not HTTP/2", r.Proto)
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 1000)) // the client may have gone
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		select { // the rest never comes
		case <-release:
		case <-r.Context().Done():
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	h := startBlackhole(t, srv.Listener.Addr().String())
	t.Setenv(gcsstore.EnvEmulator, "https://"+h.l.Addr().String())
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	tr, ok := srv.Client().Transport.(*http.Transport)
	if !ok {
		t.Fatalf("the test server's client transport is a %T", srv.Client().Transport)
	}
	gcsstore.SetTLS(b, tr.TLSClientConfig)

	rc, err := b.Open(context.Background(), "blobs/x")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }() // failed or not, nothing more to read
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	h.frozen.Store(true)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a read on a dead connection ended without an error")
		}
		t.Logf("failed after %v: %v", time.Since(start), err)
	case <-time.After(10 * time.Second):
		t.Fatal("a read on a dead HTTP/2 connection still hangs after 10 s: no health check")
	}
}
