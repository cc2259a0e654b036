// Package store owns the content-addressed store, format version 2: the layout and
// version file, objects, layer manifests and the deterministic tar packer, environment
// metadata, the write-ahead log, garbage collection, integrity verification, migration
// and the store lock.
//
// store may import schema only. It knows nothing of runtimes, the engine or frontends.
package store
