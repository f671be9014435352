// spawn: start and join 1,000,000 goroutines with a sync.WaitGroup.
// Prints wall-clock ns per goroutine.
package main

import (
	"fmt"
	"sync"
	"time"
)

const n = 1_000_000

func main() {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/n)
}
