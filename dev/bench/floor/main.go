// Command floor is the bench's floor subject (see package floorwatch), built by `make bench` so
// that its binary holds nothing but client-go.
package main

import (
	"os"

	"github.com/kpulse/kpulse/dev/bench/floorwatch"
)

func main() { os.Exit(floorwatch.Run(os.Args[1:])) }
