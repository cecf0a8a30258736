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
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free one")
	dir := flag.String("dir", "www", "directory to serve")
	get := flag.String("get", "", "instead of serving, GET this URL and print the body (exit 1 unless 200 OK)")
	flag.Parse()
	log.SetFlags(0)
	if *get != "" {
		if err := fetch(*get, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/\n", l.Addr())
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
