// Package cli owns the `karapace` command line: one file per command, each a thin
// adapter over core, and the single place where errors become exit codes.
//
// cli may import core (and the types of schema, store, runtime and remote that core's
// API exposes), the runtime backends it registers with the Engine (mock, namespace, oci),
// runtime/doctor and runtime/image (for doctor and pin), remote (to build the client push
// and pull use) and tui, to start the terminal UI. It must not import dbus or server.
//
// Layout: root.go (globals, global flags, Main), exit.go (the one mapping from error
// classes to exit codes), engine.go (Engine construction, backend registry, reference
// resolution), output.go and progress.go (JSON, colours, logs, spinners), and one file
// per command with newXCommand, an options struct and runX.
package cli
