// Package pkgmgr drives the package manager of a base image: apt (Debian, Ubuntu), dnf
// (Fedora), zypper (openSUSE) and pacman (Arch). It detects which one an image has,
// refreshes its index, asks it for the exact candidate versions of named packages,
// installs exactly given versions, and reads back what is installed.
//
// Commands run through a Runner, which the caller provides: the namespace backend runs
// them inside the environment's sandbox (with network: isolation applies to running an
// environment, not to building it). pkgmgr itself starts no process.
//
// Reproducibility is at the level of the named packages: the lock pins the versions of
// the packages a manifest names; their dependencies come from the index at build time.
//
// pkgmgr imports only the standard library. It must not import core or any frontend.
package pkgmgr
