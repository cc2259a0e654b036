// Package oci is the OCI runtime backend: it runs environments under crun, runc or youki
// from a typed runtime-spec config.json generated from the same sandbox.Plan the
// namespace backend performs (mounts, environment, hostname, id maps, network isolation,
// resource limits), and implements runtime.Backend with the runtime's own commands
// (run, kill, delete, state) and a per-store state directory (<store>/oci-state).
//
// The overlay root is mounted by a small C shim (shim.c) that the Go side starts in a new
// mount namespace (plus a user namespace for an unprivileged caller); the shim proves it
// is in that namespace, mounts the overlay on the session's merged directory, covers
// /sys/fs/cgroup/unified for runtimes that refuse hybrid cgroups, and executes the
// runtime. Nothing is ever mounted in the host's mount namespace.
//
// oci imports runtime, runtime/sandbox, runtime/image and runtime/pkgmgr; it must not
// import core or frontends. The package needs cgo.
package oci
