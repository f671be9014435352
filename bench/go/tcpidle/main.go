// tcpidle: resident memory per idle TCP connection, server plus client, 10,000 connections
// over loopback (TCPIDLE_CONNS overrides). The server is this process: one goroutine per
// connection, blocked in Read. The client is this program re-executed ("client" mode, a
// separate process: each side needs 10,000 descriptors): it dials every connection and holds
// it without a goroutine. Prints (server VmRSS growth + client VmRSS growth) / connections,
// in bytes. gorc counterpart: bench/c/tcpidle.c.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var nconns = 10000

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "tcpidle: %s: %v\n", what, err)
	os.Exit(1)
}

func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fail("/proc/self/status", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	fail("VmRSS", fmt.Errorf("not found"))
	return 0
}

func raiseNofile() {
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	if int(rl.Cur) < nconns+64 {
		fail("RLIMIT_NOFILE", fmt.Errorf("%d is too low for %d connections", rl.Cur, nconns))
	}
}

func client(addr string) {
	conns := make([]net.Conn, 0, nconns)
	before := vmRSS()
	for i := 0; i < nconns; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			fail("dial", err)
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond)
	after := vmRSS()
	fmt.Printf("%d\n", after-before)
	buf := make([]byte, 1)
	for { // hold until the server is done measuring
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

var waiting atomic.Int64

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	waiting.Add(1)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func server() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen", err)
	}
	before := vmRSS()
	cmd := exec.Command("/proc/self/exe", "client", ln.Addr().String(), strconv.Itoa(nconns))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fail("starting the client", err)
	}
	for i := 0; i < nconns; i++ {
		c, err := ln.Accept()
		if err != nil {
			fail("accept", err)
		}
		go handle(c)
	}
	for waiting.Load() < int64(nconns) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Second) // idle for a while, as bench/c/tcpidle
	after := vmRSS()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		fail("no report from the client", err)
	}
	clientGrowth, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	stdin.Close()
	cmd.Wait()
	fmt.Fprintf(os.Stderr, "tcpidle: %d connections: server +%d bytes, client +%d bytes\n", nconns, after-before, clientGrowth)
	fmt.Printf("%.1f\n", float64(after-before+clientGrowth)/float64(nconns))
}

func main() {
	if s := os.Getenv("TCPIDLE_CONNS"); s != "" {
		nconns, _ = strconv.Atoi(s)
	}
	if len(os.Args) == 4 && os.Args[1] == "client" {
		nconns, _ = strconv.Atoi(os.Args[3])
		raiseNofile()
		client(os.Args[2])
		return
	}
	raiseNofile()
	server()
}
