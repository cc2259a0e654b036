// Package testrootfs provides root file systems and an image server for tests of every
// module: a busybox rootfs, a Debian rootfs made with debootstrap (cached between runs
// under $KARAPACE_TEST_CACHE, default /var/tmp/karapace-test-cache), and an httptest
// server that serves a tarball in the LXC image-server layout.
//
// Fixtures that need a real component (debootstrap, root) fail under CI=true when it is
// missing and skip loudly otherwise. Only tests import this package.
package testrootfs
