package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// listening is the line the registry logs once it listens.
var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// registry starts the CNCF distribution registry bin on 127.0.0.1 with
// filesystem storage under dir, and in front of it a proxy that appends
// "METHOD PATH STATUS BYTES" (BYTES: of the request's body) to
// dir/requests.log for every request; it prints
// the proxy's host:port on a line of its own and serves until SIGTERM or
// SIGINT, then stops the registry. (internal/testserver does the same for
// tests; this is the bench's, outside `go test`.)
func registry(bin, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	cfg := testserver.RegistryConfig(filepath.Join(dir, "storage"))
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		log.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logf, pw
	if err := cmd.Start(); err != nil {
		log.Fatalf("starting the registry: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		_ = pw.Close() // ends the log reader
		close(exited)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			_, _ = fmt.Fprintln(logf, sc.Text()) // a lost log line loses only a diagnostic
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line past the scanner's limit: keep the registry from blocking
	}()
	var target string
	select {
	case a := <-addr:
		target = a
	case <-exited:
		log.Fatalf("the registry exited before listening (%v): see %s", waitErr, logf.Name())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		log.Fatalf("the registry did not listen within 30s: see %s", logf.Name())
	}

	reqs, err := os.OpenFile(filepath.Join(dir, "requests.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &countingReader{r: r.Body}
		r.Body = body
		// Logged as the answer starts, before the client can see it: when
		// a client has exited, every request it made is in the log.
		sw := &statusWriter{ResponseWriter: w, answer: func(status int) {
			mu.Lock()
			defer mu.Unlock()
			if _, err := fmt.Fprintf(reqs, "%s %s %d %d\n", r.Method, r.URL.Path, status, body.n); err != nil {
				log.Fatal(err)
			}
		}}
		proxy.ServeHTTP(sw, r)
	})}
	go func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Println(ln.Addr().String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sig:
		_ = cmd.Process.Kill() // fails only if it exited already
		<-exited
	case <-exited:
		log.Fatalf("the registry exited (%v): see %s", waitErr, logf.Name())
	}
}

// statusWriter calls answer with the status of the answer it passes on,
// once, before passing it on.
type statusWriter struct {
	http.ResponseWriter
	answer func(status int)
	done   bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.done && code >= 200 { // not an interim 100 Continue
		w.done = true
		w.answer(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
