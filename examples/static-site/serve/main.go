// Command serve is the smallest web server for the static-site example: it
// serves the deployed directory on 127.0.0.1, so you can watch a deploy
// and a rollback in a browser. Any web server will do as well
// (python3 -m http.server -d www 8080, nginx, ...).
//
//	go run ./serve/main.go                 # serves www/ at http://127.0.0.1:8080/
//	go run ./serve/main.go -addr 127.0.0.1:0 -dir www
//	go run ./serve/main.go -get http://127.0.0.1:8080/   # prints a page
//
// It prints the URL it serves on standard output as its only line (port 0
// picks a free port), and logs requests on standard error. Responses say
// Cache-Control: no-store, so a reload shows what is deployed right now.
//
// With -background it listens, starts the server as a process of its own
// on that socket, prints the URL and then the server's process id, and
// exits: the URL answers from the moment the command returns, however long
// the server then takes to get going (connections wait in the socket's
// queue), so a script needs no wait and has no race:
//
//	set -- $(serve -addr 127.0.0.1:0 -background)   # $1 the URL, $2 the pid
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free one")
	dir := flag.String("dir", "www", "directory to serve")
	get := flag.String("get", "", "instead of serving, GET this URL and print the body (exit 1 unless 200 OK)")
	background := flag.Bool("background", false, "listen, start the server in the background, print its URL and then its process id, and exit (not on Windows)")
	fd := flag.Int("fd", 0, "serve on this inherited listening socket instead of -addr (how -background starts the server)")
	flag.Parse()
	log.SetFlags(0)
	if *get != "" {
		if err := fetch(*get, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	var l net.Listener
	var err error
	if *fd != 0 {
		l, err = net.FileListener(os.NewFile(uintptr(*fd), "listener"))
	} else {
		l, err = net.Listen("tcp", *addr)
	}
	if err != nil {
		log.Fatal(err)
	}
	switch {
	case *background:
		pid, err := start(l, *dir)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("http://%s/\n%d\n", l.Addr(), pid)
		return
	case *fd == 0:
		fmt.Printf("http://%s/\n", l.Addr())
	}
	files := http.FileServer(http.Dir(*dir))
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s %s", r.Method, r.URL.Path)
			w.Header().Set("Cache-Control", "no-store")
			files.ServeHTTP(w, r)
		}),
	}
	log.Fatal(srv.Serve(l))
}

// start runs this program again, serving dir on l, which it inherits as
// file descriptor 3: standard input and output are /dev/null (so a caller
// reading this process's output is not held open by the server), standard
// error is this process's, where the server logs. It returns the server's
// process id.
func start(l net.Listener, dir string) (int, error) {
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return 0, fmt.Errorf("-background: cannot pass a %T to the server", l)
	}
	f, err := tl.File()
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // the server gets its own descriptor at Start; this one has done its work
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, "-fd", "3", "-dir", dir)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("-background: %w", err)
	}
	pid := cmd.Process.Pid
	return pid, cmd.Process.Release()
}

func fetch(url string, out io.Writer) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below; a close error changes nothing
	if resp.StatusCode != http.StatusOK {
		return errors.New("GET " + url + ": " + resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
