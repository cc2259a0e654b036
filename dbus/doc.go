// Package dbus owns karapace-dbus, the org.karapace.Manager1 service on the session
// bus, and the single place where errors become D-Bus error names (errors.go).
//
// A Service exports one object, /org/karapace/Manager1, with the interface
// org.karapace.Manager1 (the original's eleven methods, each replying with JSON), its
// properties through org.freedesktop.DBus.Properties, full introspection data and the
// EnvironmentChanged signal. godbus runs every incoming call on its own goroutine, so a
// build, or a call waiting for the store lock, never holds up the others. The service
// exits after an idle timeout that every call resets and running work suspends.
//
// dbus may import core and the types core exposes. It must not import cli, tui or
// server.
package dbus
