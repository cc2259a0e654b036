// Package cli owns the `karapace` command line: one file per command, each a thin
// adapter over core, and the single place where errors become exit codes.
//
// cli may import core (and the types of schema, store, runtime and remote that core's
// API exposes) and tui, to start the terminal UI. It must not import dbus or server.
package cli
