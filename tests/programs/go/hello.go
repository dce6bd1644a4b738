// The smallest Go program: the runtime starts its threads, then prints.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from go")
	fmt.Println("args", len(os.Args))
}
