// https: the hello-world HTTPS server of the https100, tlshandshake and tlsidle workloads. It
// listens on ADDR with the certificate chain CERT and key KEY (PEM files) and answers every
// request with "Hello, World!\n" as text/plain until it is killed. gorc counterpart:
// bench/c/https.c.
//
// bench/go/http over crypto/tls with its defaults (TLS 1.2 and 1.3, X25519 first, session
// tickets on). HTTP/2 is switched off (an empty TLSNextProto) so that ALPN offers the same
// "http/1.1" as the gorc and nginx servers; wrk speaks HTTP/1.1 either way.
package main

import (
	"crypto/tls"
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
		fmt.Fprintln(os.Stderr, "usage: https ADDR CERT KEY")
		os.Exit(2)
	}
	srv := &http.Server{
		Addr:         os.Args[1],
		Handler:      http.HandlerFunc(handler),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	fmt.Fprintf(os.Stderr, "https: net/http on %s, GOMAXPROCS=%d\n", os.Args[1], runtime.GOMAXPROCS(0))
	err := srv.ListenAndServeTLS(os.Args[2], os.Args[3])
	fmt.Fprintf(os.Stderr, "https: %v\n", err)
	os.Exit(1)
}
