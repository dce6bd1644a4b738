// Children started and awaited from several goroutines at once, as go build
// runs its compilers: os/exec waits for each child with waitid(WNOWAIT) and
// then wait4, while other children are zombies not yet reaped.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
)

func main() {
	const workers, each = 4, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lines []string
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cmd := exec.Command(os.Args[1], "-c", fmt.Sprintf("echo w%d-%d; exit %d", w, i, i))
				out, err := cmd.Output()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					code = -1
					fmt.Println("error:", err)
				}
				mu.Lock()
				lines = append(lines, fmt.Sprintf("%s status %d", strings.TrimSpace(string(out)), code))
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
}
