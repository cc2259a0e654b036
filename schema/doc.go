// Package schema owns Karapace's formats: the v1 manifest (parsing, validation,
// normalization, canonical JSON), the preliminary and lock identities, the v2 lock
// file, the built-in presets and templates, and the digest value types used by every
// other module.
//
// schema is the bottom of the dependency graph: it must not import any other
// Karapace module.
package schema
