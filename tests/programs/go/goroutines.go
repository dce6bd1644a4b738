// Many goroutines over channels, timers, a mutex and a wait group.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	const n = 1000
	results := make(chan int, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	shared := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i%10) * time.Millisecond)
			mu.Lock()
			shared++
			mu.Unlock()
			select {
			case results <- i:
			case <-time.After(time.Minute):
				panic("channel stuck")
			}
		}(i)
	}
	go func() { wg.Wait(); close(results) }()
	sum := 0
	for v := range results {
		sum += v
	}
	// A ping-pong over unbuffered channels.
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < 2000; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	fmt.Println("sum", sum, "shared", shared, "pingpong", v)
}
