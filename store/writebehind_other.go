//go:build !linux

package store

import "os"

// startWriteback is advice only Linux takes (see writebehind_linux.go).
func startWriteback(*os.File, int64, int64) {}
