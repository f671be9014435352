// sleepers: 100,000 goroutines each sleep 10 ms, 20 times. Prints the CPU time (user +
// system, from getrusage) the whole process spent, in microseconds per sleep.
package main

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

const (
	goroutines = 100_000
	sleeps     = 20
	nap        = 10 * time.Millisecond
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "getrusage:", err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	var wg sync.WaitGroup
	wallStart := time.Now()
	cpuStart := cpuTime()
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < sleeps; j++ {
				time.Sleep(nap)
			}
		}()
	}
	wg.Wait()
	cpu := cpuTime() - cpuStart
	fmt.Fprintf(os.Stderr, "sleepers: wall %v, cpu %v\n", time.Since(wallStart), cpu)
	fmt.Printf("%.3f\n", float64(cpu.Nanoseconds())/1e3/(goroutines*sleeps))
}
