// Package runtimetest is the conformance suite every real runtime backend passes: the
// same end-to-end cases (output and exit status, stdin, writes landing in the upper
// layer, network isolation, environment filtering, hostname, stop, destroy, nothing left
// mounted or running) run against the namespace backend and the OCI backend under each
// OCI runtime, on real root filesystems. Only tests import this package.
package runtimetest
