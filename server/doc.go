// Package server owns karapace-server, the reference remote store over HTTP
// (protocol v1): routing with strict key validation, blake3 verification of uploads,
// atomic writes in the original server's data-directory layout, conditional registry
// writes (ETag, If-Match) with keys checked by the client's rule, bearer-token
// authentication, size limits, body deadlines (a minimum rate, an optional absolute
// limit), a cap on concurrent uploads and structured logs.
// The command is in server/cmd/karapace-server.
//
// server may import schema, store and remote (for the protocol types). It must not
// import runtime, core or any other frontend.
package server
