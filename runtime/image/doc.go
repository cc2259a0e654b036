// Package image owns base images: resolving a manifest's `base.image` (an alias of the
// LXC image server, an http(s) URL or a local tarball) to a source, downloading it,
// extracting it safely for an unprivileged user and caching the result under
// `<store>/images/<cache_key>/`.
//
// An image's digest is the BLAKE3 of the tarball bytes as downloaded. The extracted tree
// has its own digest (contents, modes, link targets) recorded beside it, so the cache can
// be re-verified later (Cache.Verify).
//
// Cache layout:
//
//	<store>/images/<key>/rootfs/        extracted tree, used read-only as the lower layer
//	<store>/images/<key>/rootfs.blake3  tarball digest, 64 lowercase hex, no newline
//	<store>/images/<key>/image.json     Record: source, digest, size, time, tree digest
//	<store>/images/.lock-<key>          flock serialising work on one key
//	<store>/images/.tmp-<key>-*         work in progress; renamed into place when complete
//
// image imports schema only. It must not import store, core or any frontend.
package image
