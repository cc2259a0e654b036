// Command karapace-dbus serves org.karapace.Manager1 on the session bus.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "karapace-dbus: the D-Bus service is not implemented yet")
	os.Exit(1)
}
