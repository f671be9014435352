// chanbuf: one producer sends 20,000,000 ints through a channel of capacity 1024 to one
// consumer. Prints wall-clock ns per item.
package main

import (
	"fmt"
	"os"
	"time"
)

const n = 20_000_000

func main() {
	ch := make(chan int, 1024)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum := 0
	for v := range ch {
		sum += v
	}
	elapsed := time.Since(start)
	if want := n * (n - 1) / 2; sum != want {
		fmt.Fprintf(os.Stderr, "chanbuf: sum %d, want %d\n", sum, want)
		os.Exit(1)
	}
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/n)
}
