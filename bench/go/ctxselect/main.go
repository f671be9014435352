// ctxselect: a consumer receives 5,000,000 ints from a producer over an unbuffered channel,
// each receive a select on the channel and on a request context's Done channel (as a
// cancellable handler reads). Prints wall-clock ns per item.
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

const n = 5_000_000

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan int)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum, items := 0, 0
loop:
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				break loop
			}
			sum += v
			items++
		case <-ctx.Done():
			break loop
		}
	}
	ns := time.Since(start).Nanoseconds()
	if items != n || sum != n*(n-1)/2 {
		fmt.Fprintln(os.Stderr, "ctxselect: wrong items")
		os.Exit(1)
	}
	cancel()
	fmt.Printf("%.1f\n", float64(ns)/n)
}
