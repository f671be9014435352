// http: the hello-world HTTP server of the http100/http1000 workloads. It listens on the
// address given as its only argument and answers every request with "Hello, World!\n" as
// text/plain until it is killed; bench/run measures it from outside with wrk. gorc
// counterpart: bench/c/http.c.
//
// The server is net/http with nothing tuned: no timeouts, as http.ListenAndServe runs (setting
// them would cost net/http a deadline update per request; the gorc server keeps its default
// timeouts, so Go is not at a disadvantage here). Content-Type is set explicitly to what
// net/http would sniff anyway, so the handler does the same work as the gorc and nginx ones
// and the bytes on the wire match.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

var hello = []byte("Hello, World!\n")

func handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(hello)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: http ADDR (e.g. 127.0.0.1:8080)")
		os.Exit(2)
	}
	srv := &http.Server{Addr: os.Args[1], Handler: http.HandlerFunc(handler)}
	fmt.Fprintf(os.Stderr, "http: net/http on %s, GOMAXPROCS=%d\n", os.Args[1], runtime.GOMAXPROCS(0))
	err := srv.ListenAndServe()
	fmt.Fprintf(os.Stderr, "http: %v\n", err)
	os.Exit(1)
}
