// Package core owns the Engine: the whole environment lifecycle (init, build, rebuild,
// enter, exec, stop, destroy, freeze, archive, rename, commit, restore, gc, verify,
// migrate, push and pull), drift detection, environment references and the store-lock
// discipline shared by every frontend.
//
// Every frontend (cli, dbus, tui) drives environments only through an Engine. The Engine
// keeps no state in memory between calls: every call re-reads the store, so several
// Engines, in one process or many, can share one store. Mutations take the store's
// exclusive lock for one state change at a time and run under a write-ahead-log entry
// that rolls back cleanly; interactive sessions never hold the lock while they run.
//
// core may import schema, store, runtime and remote. It must not import cli, dbus, tui
// or server, and it registers no backends itself: New receives them.
package core
