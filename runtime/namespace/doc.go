// Package namespace is the native namespace backend: it runs a sandbox.Plan in new user,
// mount, PID, UTS and IPC namespaces (plus a network namespace when the plan isolates
// the network) without any external tool, and implements runtime.Backend on top of it.
//
// The launcher has two halves. The Go half (Run) starts the binary itself again with a
// hidden argument; a C constructor compiled into the binary (nsinit.c) intercepts that
// argument before the Go runtime starts, creates the namespaces, performs the plan's
// mounts, pivots into the new root and supervises the command as PID 1. The two halves
// speak typed messages over a socket pair; see the protocol diagram in launch_linux.go.
//
// Every binary that imports this package carries the constructor, so Run works from the
// karapace binary and from test binaries alike. The package needs cgo.
//
// namespace imports runtime and runtime/sandbox; it must not import core or frontends.
package namespace
