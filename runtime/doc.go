// Package runtime owns running environments: the Backend interface and its namespace,
// OCI and mock implementations, base images, package managers, the security policy,
// host integration, desktop app export and the prerequisite checks behind `doctor`.
//
// runtime may import schema and store. It must not import core, remote or any frontend.
package runtime
