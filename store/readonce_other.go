//go:build !linux

package store

import "os"

// readOnce is advice the kernel takes only on Linux (see readonce_linux.go).
func readOnce(*os.File) {}
