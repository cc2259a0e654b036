// Package tui owns the terminal UI started by `karapace tui`.
//
// tui may import core and the types core exposes. It must not import cli, dbus or
// server.
package tui
