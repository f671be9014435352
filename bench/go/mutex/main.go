// mutex: 100 goroutines each lock a shared sync.Mutex, increment a counter and unlock,
// 100,000 times. Prints wall-clock ns per lock/unlock pair.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

const (
	workers = 100
	iters   = 100_000
)

func main() {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		count int
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	if count != workers*iters {
		fmt.Fprintf(os.Stderr, "mutex: count %d, want %d\n", count, workers*iters)
		os.Exit(1)
	}
	fmt.Printf("%.2f\n", float64(elapsed.Nanoseconds())/(workers*iters))
}
