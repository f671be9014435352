// Command wsidle is the Go side of bench/run's wsidle workload: a WebSocket server whose
// connections sit idle, measured from outside by bench/wsidle.py. Go 1.19's standard library
// has no WebSocket, so the handler answers the handshake itself (http.Hijacker), drops the
// hijacked bufio buffers, and parks its goroutine in a plain net.Conn Read of the next frame
// header: the least a Go WebSocket connection can hold while idle.
package main

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"syscall"
)

func serve(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		http.Error(w, "not a websocket handshake", 400)
		return
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	brw.WriteString(base64.StdEncoding.EncodeToString(h[:]))
	brw.WriteString("\r\n\r\n")
	if brw.Flush() != nil {
		conn.Close()
		return
	}
	var hdr [2]byte
	conn.Read(hdr[:]) // idle here until the client sends or goes away
	conn.Close()
}

func main() {
	addr := "127.0.0.1:8093"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, http.HandlerFunc(serve)))
}
