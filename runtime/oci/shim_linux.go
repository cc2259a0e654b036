package oci

// The shim lives in shim.c; importing "C" compiles it into every binary that imports
// this package. Its constructor returns at once unless argv[1] is shimArg.

// #cgo CFLAGS: -O2 -Wall
import "C"

// shimArg is the hidden argv[1] that sends a re-executed binary into shim.c.
const shimArg = "__karapace_oci_shim"
