// Command karapace-server is the reference remote store for Karapace.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "karapace-server: the remote store server is not implemented yet")
	os.Exit(1)
}
