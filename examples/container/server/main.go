// Command server is the container example's web server: a static Go
// program that serves the files of its working directory on PORT. It has
// no go.mod of its own; immutable_build compiles it with `go build main.go`
// into a static linux/amd64 binary, which the image runs from scratch.
package main

import (
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           http.FileServer(http.Dir(".")),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving on :%s", port)
	log.Fatal(srv.ListenAndServe())
}
