// Package remote owns the remote store client: the Backend interface, the HTTP backend
// speaking protocol v1, the registry of tags, and the push and pull algorithms.
//
// remote may import schema and store. It must not import runtime, core or any
// frontend; the server imports remote's protocol types, never the reverse.
package remote
