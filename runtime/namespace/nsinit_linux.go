package namespace

// The C half of the launcher lives in nsinit.c; importing "C" compiles it into every
// binary that imports this package. Its constructor returns at once unless argv[1] is
// initArg. Nothing here is exported to C (an //export would duplicate the C preamble).

// #cgo CFLAGS: -O2 -Wall
import "C"

// initArg is the hidden argv[1] that sends a re-executed binary into nsinit.c.
const initArg = "__karapace_nsinit"
