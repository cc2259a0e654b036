// Package tui owns the terminal UI started by `karapace tui`: a list of the store's
// environments, a detail view (metadata, layers, snapshots, what the lock pins, drift),
// a help view and a snapshot picker, with vim-style keys and the mouse. Actions (freeze,
// archive, destroy, rename, commit, restore, enter) go through core.Engine, which takes
// the store lock for each; the UI itself holds none and follows the store by polling
// its metadata directory. See docs/tui.md.
//
// Run is the entry point; Options carries the Engine (or what to build one from), the
// screen (a tcell simulation screen in tests) and the function that runs an interactive
// session while the UI is suspended.
//
// tui may import core and the types core exposes, and reads the store (manifest
// objects, layer manifests, sizes) read-only through the store module. It must not
// import cli, dbus or server.
package tui
