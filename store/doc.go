// Package store owns the content-addressed store, format version 2 (compatible with
// the original implementation; docs/storage-format.md describes every file):
//
//   - Layout: every path, the version file (Initialize, VerifyVersion), the store lock
//     (Lock, TryLock: flock on store/.lock, shared for readers, exclusive for writers),
//     private directories (0700; Tighten closes an existing store for writers);
//   - Objects: blobs keyed by BLAKE3, streamed in and out, verified on every read
//     (ObjectStore is the interface; storetest holds its conformance suite and an
//     in-memory implementation);
//   - Layers and Pack/Unpack: layer manifests and the deterministic tar packer,
//     byte-identical to the original's, with overlay whiteouts kept;
//   - Envs: environment metadata with checksums, states and names;
//   - WAL: the write-ahead log and crash recovery;
//   - Store.GC (Mark is pure), Store.Verify, Migrate.
//
// Every write is atomic (temp file, fsync, rename, fsync dir). Every error is in the
// ErrStore class, with sentinels (ErrNotFound, ErrIntegrity, ...) for errors.Is.
//
// store may import schema only. It knows nothing of runtimes, the engine or frontends.
package store
