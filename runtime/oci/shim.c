// The OCI backend's shim. It runs from an ELF constructor, before the Go runtime starts,
// when the binary is re-executed with argv[1] == "__karapace_oci_shim". The Go parent
// starts it in a new mount namespace (and, for an unprivileged caller, a new user
// namespace); the shim mounts the session's overlay root and, on hybrid-cgroup hosts,
// covers /sys/fs/cgroup/unified, then executes the OCI runtime. Everything it mounts
// lives in its private mount namespace and disappears with the runtime process.
//
//   argv: shim __karapace_oci_shim PARENT_MNT_INO WAIT HIDE OVERLAY_DATA MERGED RUNTIME ARGS...
//
// WAIT "1": block until the parent writes one byte on fd 3 (after writing the id maps),
// then execute itself again with WAIT "0", as root of the mapped user namespace.
// HIDE "1": cover /sys/fs/cgroup/unified with an empty tmpfs. OVERLAY_DATA and MERGED
// empty: no overlay (kill, state and delete need only HIDE).
//
// Before any mount, guard() proves the shim is in a mount namespace that is neither the
// parent's (its inode is passed by the parent) nor PID 1's (when readable), and that an
// unprivileged shim is in a non-initial user namespace. It never trusts a flag.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_ARG "__karapace_oci_shim"

static void die(const char *what) {
	fprintf(stderr, "karapace oci shim: %s: %s\n", what, errno ? strerror(errno) : "refused");
	_exit(125);
}

static int initial_userns(void) {
	char buf[128];
	FILE *f = fopen("/proc/self/uid_map", "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	unsigned long a, b, c;
	if (sscanf(buf, "%lu %lu %lu", &a, &b, &c) != 3)
		return 1; // an unwritten map: treat as unsafe
	return a == 0 && b == 0 && c == 4294967295UL;
}

static void guard(unsigned long long parent_ino) {
	struct stat self, init;
	errno = 0;
	if (parent_ino == 0)
		die("no parent mount namespace given");
	if (stat("/proc/self/ns/mnt", &self) != 0)
		die("stat own mount namespace");
	if ((unsigned long long)self.st_ino == parent_ino) {
		errno = 0;
		die("still in the parent's mount namespace");
	}
	if (stat("/proc/1/ns/mnt", &init) == 0 && init.st_ino == self.st_ino) {
		errno = 0;
		die("in the initial mount namespace");
	}
	if (geteuid() != 0 || getuid() != 0) {
		errno = 0;
		die("not root in its namespace");
	}
	// Only host root may run the shim in the initial user namespace (to let the runtime
	// apply cgroup limits); any other caller must be in a user namespace of its own.
	if (initial_userns() && getenv("KARAPACE_OCI_SHIM_HOST_ROOT") == NULL) {
		errno = 0;
		die("in the initial user namespace");
	}
}

__attribute__((constructor)) static void karapace_oci_shim(int argc, char **argv, char **envp) {
	if (argc < 2 || strcmp(argv[1], SHIM_ARG) != 0)
		return;
	if (argc < 8) {
		errno = 0;
		die("usage");
	}
	unsigned long long parent = strtoull(argv[2], NULL, 10);
	if (strcmp(argv[3], "1") == 0) {
		char c;
		ssize_t n;
		do
			n = read(3, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			if (n == 0)
				errno = 0;
			die("wait for the id maps");
		}
		close(3);
		// The kernel computed our capabilities when the Go parent executed us, before
		// the maps existed and so as an unmapped user: none. Now that 0 is mapped,
		// executing again makes us root in the namespace with its full capability set.
		argv[3] = "0";
		execv("/proc/self/exe", argv);
		die("re-execute after the id maps");
	}
	guard(parent);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		die("make / private");
	if (strcmp(argv[4], "1") == 0) {
		if (mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755") != 0)
			die("cover /sys/fs/cgroup/unified");
	}
	if (argv[5][0] != 0) {
		if (argv[6][0] == 0) {
			errno = 0;
			die("overlay without a mount point");
		}
		if (mount("overlay", argv[6], "overlay", 0, argv[5]) != 0)
			die("mount the overlay root");
	}
	unsetenv("KARAPACE_OCI_SHIM_HOST_ROOT");
	execv(argv[7], argv + 7);
	die("execute the OCI runtime");
}
