// Package remote owns the remote store client: the Backend interface (split into
// BlobPutter, BlobGetter, BlobStatter, BlobLister and RegistryStore), the HTTP backend
// speaking protocol v1, the in-memory backend, the registry of tags and reference
// parsing, the client configuration file, and the push and pull algorithms.
//
// Push and Pull work against small local interfaces (Source, Sink, PullTx); Local
// implements them over a store.Store. Every blob streams in 1 MiB chunks and is hashed
// on the way, in both directions. docs/remote.md describes the protocol.
//
// remote may import schema and store. It must not import runtime, core or any
// frontend; the server imports remote's protocol types, never the reverse. The
// conformance suite for Backend implementations is in remote/remotetest.
package remote
