// chanbuf4: 4 producers send 20,000,000 ints in total through one channel of capacity 1024
// to 4 consumers. Prints wall-clock ns per item.
package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	n         = 20_000_000
	producers = 4
	consumers = 4
)

func main() {
	ch := make(chan int, 1024)
	var prod, cons sync.WaitGroup
	var total atomic.Int64

	start := time.Now()
	for c := 0; c < consumers; c++ {
		cons.Add(1)
		go func() {
			defer cons.Done()
			sum := 0
			for v := range ch {
				sum += v
			}
			total.Add(int64(sum))
		}()
	}
	for p := 0; p < producers; p++ {
		prod.Add(1)
		go func(first int) {
			defer prod.Done()
			for i := first; i < n; i += producers {
				ch <- i
			}
		}(p)
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	elapsed := time.Since(start)

	if want := int64(n) * (n - 1) / 2; total.Load() != want {
		fmt.Fprintf(os.Stderr, "chanbuf4: sum %d, want %d\n", total.Load(), want)
		os.Exit(1)
	}
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/n)
}
