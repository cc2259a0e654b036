// Package server owns karapace-server, the reference remote store over HTTP
// (protocol v1).
//
// server may import schema, store and remote (for the protocol types). It must not
// import runtime, core or any other frontend.
package server
