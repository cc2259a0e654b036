// Package schema owns Karapace's formats: the v1 manifest (parsing, validation,
// normalization, canonical JSON), the preliminary and lock identities, the v2 lock
// file, the built-in presets and templates, and the digest value types used by every
// other module.
//
// The path of a manifest to an environment id:
//
//	ParseManifest / LoadManifest -> *Manifest
//	(*Manifest).Normalize         -> *Normalized (CanonicalJSON, PreliminaryID)
//	NewLock(normalized, resolution) -> *Lock (Identity = the env id; Marshal, WriteFile)
//	ReadLock / ParseLock          -> *Lock (VerifyIntegrity, VerifyManifestIntent)
//
// Errors: every manifest error matches ErrManifest, every lock error ErrLock; finer
// sentinels (ErrEmptyBaseImage, ErrLockSyntax, ...) and the typed *DriftError and
// *EnvIDMismatchError say which rule failed. Every format that is hashed or written
// here is byte-compatible with the original Rust implementation; docs/manifest.md
// describes them.
//
// schema is the bottom of the dependency graph: it must not import any other
// Karapace module.
package schema
