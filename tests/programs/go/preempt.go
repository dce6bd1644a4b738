// Tight loops that never call a function can only be stopped by asynchronous
// preemption: the runtime's sysmon sends SIGURG to the thread running them.
package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

var stop int32

func spin(counter *int64) {
	n := int64(0)
	for atomic.LoadInt32(&stop) == 0 {
		n++
	}
	atomic.AddInt64(counter, n)
}

func main() {
	var counter int64
	spinners := runtime.NumCPU() + 1
	for i := 0; i < spinners; i++ {
		go spin(&counter)
	}
	// Sleeping and collecting garbage both need every spinner preempted:
	// the timer's goroutine must get a P, and GC must stop the world.
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	fmt.Println("gc done with a spinner on every CPU") // not the count: it may differ
	prev := runtime.GOMAXPROCS(1)
	fmt.Println("GOMAXPROCS set to 1")
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	fmt.Println("one P: main still runs")
	runtime.GOMAXPROCS(prev)
	atomic.StoreInt32(&stop, 1)
	fmt.Println("spinners ran:", atomic.LoadInt64(&counter) >= 0)
}
