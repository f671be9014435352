// pingpong: two goroutines bounce an int over two unbuffered channels. The harness runs it as
// workload pingpong1 (GOMAXPROCS=1) and pingpong2 (GOMAXPROCS=2). Prints wall-clock ns per
// round trip.
package main

import (
	"fmt"
	"os"
	"time"
)

const rounds = 5_000_000

func main() {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()

	v := 0
	start := time.Now()
	for i := 0; i < rounds; i++ {
		ping <- v
		v = <-pong
	}
	elapsed := time.Since(start)
	close(ping)
	<-pong
	if v != rounds {
		fmt.Fprintf(os.Stderr, "pingpong: got %d, want %d\n", v, rounds)
		os.Exit(1)
	}
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/rounds)
}
