// Package dbus owns karapace-dbus, the org.karapace.Manager1 service on the session
// bus, and the single place where errors become D-Bus error names.
//
// dbus may import core and the types core exposes. It must not import cli, tui or
// server.
package dbus
