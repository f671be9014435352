// h2s_goclient - Go's net/http client (HTTP/2 over TLS, negotiated by ALPN) against the gorc
// server, for tests/e2e/http2-e2e: GET URL once, then COUNT times at once over the same
// Transport, trusting only CA_FILE, read every body, and print one line:
//
//	ok=N status=S proto=P bytes=B conns=C
//
// (N counts the COUNT concurrent GETs; S and P are of the last response; C the TCP connections
// the Transport dialed: 1 when the concurrent requests were multiplexed on the first one -
// the first GET comes alone because Go dials one connection per request while none is up). Standard library only, so `go run` needs no module download.
//
//	go run ./tests/e2e/h2s_goclient URL COUNT CA_FILE
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: h2s_goclient URL COUNT CA_FILE")
		os.Exit(2)
	}
	url := os.Args[1]
	count, _ := strconv.Atoi(os.Args[2])
	pem, err := os.ReadFile(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	var conns int64
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true, // a custom TLSClientConfig turns HTTP/2 off otherwise
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			atomic.AddInt64(&conns, 1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var ok, bytes int64
	var last struct {
		sync.Mutex
		status int
		proto  string
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2s_goclient:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err != nil {
				fmt.Fprintln(os.Stderr, "h2s_goclient:", err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				atomic.AddInt64(&ok, 1)
				atomic.AddInt64(&bytes, n)
			}
			last.Lock()
			last.status, last.proto = resp.StatusCode, resp.Proto
			last.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("ok=%d status=%d proto=%s bytes=%d conns=%d\n", ok, last.status, last.proto, bytes,
		atomic.LoadInt64(&conns))
}
