// select: one consumer selects over 4 unbuffered channels, each fed by its own producer
// (5,000,000 ints in total). Prints wall-clock ns per item.
package main

import (
	"fmt"
	"os"
	"time"
)

const n = 5_000_000

func produce(ch chan<- int, first int) {
	for i := first; i < n; i += 4 {
		ch <- i
	}
	close(ch)
}

func main() {
	c0, c1, c2, c3 := make(chan int), make(chan int), make(chan int), make(chan int)

	start := time.Now()
	go produce(c0, 0)
	go produce(c1, 1)
	go produce(c2, 2)
	go produce(c3, 3)

	sum, items := 0, 0
	for open := 4; open > 0; {
		var v int
		var ok bool
		select {
		case v, ok = <-c0:
			if !ok {
				c0 = nil
			}
		case v, ok = <-c1:
			if !ok {
				c1 = nil
			}
		case v, ok = <-c2:
			if !ok {
				c2 = nil
			}
		case v, ok = <-c3:
			if !ok {
				c3 = nil
			}
		}
		if !ok {
			open--
			continue
		}
		sum += v
		items++
	}
	elapsed := time.Since(start)

	if want := n * (n - 1) / 2; sum != want || items != n {
		fmt.Fprintf(os.Stderr, "select: %d items sum %d, want %d items sum %d\n", items, sum, n, want)
		os.Exit(1)
	}
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/n)
}
