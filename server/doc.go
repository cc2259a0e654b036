// Package server owns karapace-server, the reference remote store over HTTP
// (protocol v1): routing with strict key validation, blake3 verification of uploads,
// atomic writes in the original server's data-directory layout, conditional registry
// writes (ETag, If-Match), bearer-token authentication, size limits and structured logs.
// The command is in server/cmd/karapace-server.
//
// server may import schema, store and remote (for the protocol types). It must not
// import runtime, core or any other frontend.
package server
