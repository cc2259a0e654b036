// Package storetest holds the conformance suite every store.ObjectStore implementation
// must pass, and MemObjects, a working in-memory ObjectStore for tests of other packages.
package storetest
