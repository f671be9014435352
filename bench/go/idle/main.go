// idle: resident memory per goroutine parked on a channel receive, 100,000 of them.
// Prints (VmRSS after - VmRSS before) / 100,000 in bytes.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const n = 100_000

// vmRSS returns the resident set size from /proc/self/status, in bytes.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle:", err)
		os.Exit(1)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				break
			}
			return kb * 1024
		}
	}
	fmt.Fprintln(os.Stderr, "idle: no VmRSS in /proc/self/status")
	os.Exit(1)
	return 0
}

func main() {
	block := make(chan struct{})
	var parked, exited sync.WaitGroup

	before := vmRSS()
	for i := 0; i < n; i++ {
		parked.Add(1)
		exited.Add(1)
		go func() {
			defer exited.Done()
			parked.Done()
			<-block
		}()
	}
	parked.Wait()
	// Idle means parked for a while; both sides wait the same 5 s (gorc compacts parked
	// goroutines' stacks after 0.5-1 s).
	time.Sleep(5 * time.Second)
	after := vmRSS()

	close(block)
	exited.Wait()
	fmt.Fprintf(os.Stderr, "idle: VmRSS before %d after %d\n", before, after)
	fmt.Printf("%.1f\n", float64(after-before)/n)
}
