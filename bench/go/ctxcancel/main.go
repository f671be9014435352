// ctxcancel: 1,000,000 times, a cancellable child of a request context (itself cancellable),
// cancelled - what a handler does per backend call. Prints wall-clock ns per child.
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

const n = 1_000_000

func main() {
	req, cancelReq := context.WithCancel(context.Background())
	start := time.Now()
	for i := 0; i < n; i++ {
		_, cancel := context.WithCancel(req)
		cancel()
	}
	ns := time.Since(start).Nanoseconds()
	if req.Err() != nil {
		fmt.Fprintln(os.Stderr, "ctxcancel: the parent was cancelled")
		os.Exit(1)
	}
	cancelReq()
	fmt.Printf("%.1f\n", float64(ns)/n)
}
