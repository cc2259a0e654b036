// Package core owns the Engine: the whole environment lifecycle (init, build, rebuild,
// enter, exec, stop, destroy, freeze, archive, rename, commit, restore, gc, verify,
// push and pull), drift detection and the store-lock discipline shared by every
// frontend.
//
// core may import schema, store, runtime and remote. It must not import cli, dbus, tui
// or server.
package core
