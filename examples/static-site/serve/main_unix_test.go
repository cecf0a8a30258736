//go:build unix

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asCommand makes this test binary the serve command: -background starts
// os.Executable() again, which is this binary, so it must serve too.
const asCommand = "SERVE_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve runs the serve command with args, as a script would with its
// standard error sent to a file, and returns its standard output, its
// standard error and its error. It fails the test if the command still
// holds its standard output 10 seconds after it exited: a script's $(...)
// would hang there.
func serve(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logf.Close() }() // read back below by name
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), asCommand+"=1")
	cmd.Stderr = logf
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("serve %s exited but its standard output stayed open: a script reading it would hang", strings.Join(args, " "))
	}
	log, rerr := os.ReadFile(logf.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	return string(out), string(log), err
}

// TestBackgroundAnswersOnReturn is what `make demo` relies on: once
// `serve -background` returns, the URL it printed answers, however slowly
// the server gets going. Here the server is stopped (SIGSTOP, as a busy
// machine would hold it) the moment the command returns: connecting and
// sending the request still succeed, and the page comes once it runs.
// The demo read the URL of a server it had just started in the background
// and failed when the server had not started yet.
func TestBackgroundAnswersOnReturn(t *testing.T) {
	dir := t.TempDir()
	page := "<p>first edition</p>\n"
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	out, log, err := serve(t, "-addr", "127.0.0.1:0", "-dir", dir, "-background")
	if err != nil {
		t.Fatalf("serve -background: %v\n%s", err, log)
	}
	fields := strings.Fields(out)
	if len(fields) != 2 || strings.Count(out, "\n") != 2 {
		t.Fatalf("serve -background printed %q, want the URL and the process id, one a line", out)
	}
	u, err := url.Parse(fields[0])
	if err != nil || u.Scheme != "http" || u.Path != "/" {
		t.Fatalf("serve -background printed the URL %q (%v)", fields[0], err)
	}
	pid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("serve -background printed the process id %q", fields[1])
	}
	server, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = server.Signal(syscall.SIGCONT) // best effort: it is killed next either way
		_ = server.Kill()                  // gone already if the test failed early; nothing to do then
	})
	if err := server.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("stopping the server (pid %d): %v\n%s", pid, err, log)
	}

	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("connecting to %s while the server is stopped: %v", u, err)
	}
	defer func() { _ = conn.Close() }() // the response is read to the end below
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", u.Host); err != nil {
		t.Fatalf("sending the request while the server is stopped: %v", err)
	}
	if err := server.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response once the server runs: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != page {
		t.Fatalf("GET %s: %s %q, want 200 OK %q", u, resp.Status, body, page)
	}
}

// TestBackgroundFailsWhenItCannotListen: a taken address is an error on
// standard error and a failed exit, with nothing on standard output, so a
// script stops there with the reason.
func TestBackgroundFailsWhenItCannotListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }() // held for the test only
	out, log, err := serve(t, "-addr", taken.Addr().String(), "-dir", t.TempDir(), "-background")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || out != "" || !strings.Contains(log, "address already in use") {
		t.Fatalf("serve -background on a taken address: err %v, stdout %q, stderr %q; want a failed exit, no output, and the reason", err, out, log)
	}
}
