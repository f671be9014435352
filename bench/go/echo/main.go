// echo: 100 TCP connections over loopback, each doing 64-byte request/response round trips
// against an echo server in the same process, for 5 s (ECHO_SECONDS overrides). Prints wall
// ns per round trip (elapsed / round trips over all connections). gorc counterpart:
// bench/c/echo.c.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	conns = 100
	msg   = 64
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "echo: %s: %v\n", what, err)
	os.Exit(1)
}

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, msg)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			fail("server write", err)
		}
	}
}

func main() {
	secs := 5.0
	if s := os.Getenv("ECHO_SECONDS"); s != "" {
		secs, _ = strconv.ParseFloat(s, 64)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	addr := ln.Addr().String()
	var stop atomic.Bool
	done := make(chan int64, conns)
	t0 := time.Now()
	for i := 0; i < conns; i++ {
		go func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				fail("dial", err)
			}
			req := bytes.Repeat([]byte{'x'}, msg)
			resp := make([]byte, msg)
			var count int64
			for !stop.Load() {
				binary.LittleEndian.PutUint64(req, uint64(count))
				if _, err := c.Write(req); err != nil {
					fail("client write", err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					fail("client read", err)
				}
				if !bytes.Equal(req, resp) {
					fail("check", fmt.Errorf("response does not match request"))
				}
				count++
			}
			c.Close()
			done <- count
		}()
	}
	time.Sleep(time.Duration(secs * float64(time.Second)))
	stop.Store(true)
	var total int64
	for i := 0; i < conns; i++ {
		total += <-done
	}
	elapsed := time.Since(t0)
	ln.Close()
	fmt.Fprintf(os.Stderr, "echo: %d round trips in %.3f s over %d connections\n", total, elapsed.Seconds(), conns)
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/float64(total))
}
