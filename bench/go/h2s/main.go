// h2s: the hello-world server of the h2-over-TLS workloads (h2, h2s100). It listens on ADDR
// with the certificate chain CERT and key KEY (PEM files) and answers every request with
// "Hello, World!\n" as text/plain until it is killed. gorc counterpart: bench/c/h2s.c.
//
// bench/go/https with net/http's default HTTP/2: ListenAndServeTLS offers "h2" and
// "http/1.1" by ALPN, and h2load chooses h2 (TLS 1.3, X25519).
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
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: h2s ADDR CERT KEY")
		os.Exit(2)
	}
	srv := &http.Server{Addr: os.Args[1], Handler: http.HandlerFunc(handler)}
	fmt.Fprintf(os.Stderr, "h2s: net/http on %s, GOMAXPROCS=%d\n", os.Args[1], runtime.GOMAXPROCS(0))
	err := srv.ListenAndServeTLS(os.Args[2], os.Args[3])
	fmt.Fprintf(os.Stderr, "h2s: %v\n", err)
	os.Exit(1)
}
