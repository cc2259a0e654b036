// The in-namespace half of the launcher. It runs from an ELF constructor, before the Go
// runtime starts, when the binary is re-executed with argv[1] == "__karapace_nsinit".
// Everything here is single-threaded C: unshare(CLONE_NEWUSER) and the mounts need that.
// The protocol with the Go parent is documented in launch_linux.go; the message layout
// is mirrored there (msgSize, msgError, msgUserns, msgPTY).
//
// Every function that mounts, pivots or unmounts calls guard() first (do_mount's only
// caller, mount_all, once before its loop): it proves the process is in a user namespace
// that is not the initial one and not the parent's, and in a mount namespace that is not
// the parent's. It never trusts a flag.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <grp.h>
#include <termios.h>
#include <unistd.h>

#define NSINIT_ARG "__karapace_nsinit"
#define UNSHARE_ARG "__karapace_unshare"
#define SYNC_FD 3
#define SLOT_FD 4 // the session slot's lock, held until the overlay is gone
#define PLAN_MAGIC "KPNS2"
#define MAX_PLAN (16 << 20)

#define MSG_ERROR 1
#define MSG_USERNS 2
#define MSG_PTY 3

#define WANT_USERNS 1  // create a user namespace
#define WANT_SELFMAP 2 // map 0 to our own ids ourselves
#define WANT_PARENT 4  // wait for the parent (id maps, cgroup) after the plan

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

struct kp_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

struct kp_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

// 512 bytes, little-endian host order: type, errno, stage, text.
struct kp_msg {
	uint32_t type;
	int32_t err;
	char stage[32];
	char text[472];
};

struct kp_mount {
	char *type, *source, *dest, *data;
	unsigned long flags;
	int file, optional, bind, recursive;
};

struct kp_plan {
	unsigned long long parent_userns, parent_mntns;
	int tty, netns, readonly, skip_userns, skip_mntns;
	char *overlay_mode, *fuse_path, *hostname, *overlay_opts, *merged, *setup_lock;
	// The command's limits (sandbox.Security): capabilities kept (bit n for capability
	// n), paths masked and made read-only, and the seccomp program (hex, may be "").
	unsigned long long caps;
	char **masked, **readonly_paths;
	char *seccomp;
	int nmounts;
	struct kp_mount *mounts;
	char **env;
	char **argv;
	char *dir;
};

static struct kp_plan plan;

// The environment keeper. The exec fast path (fastexec.h) sets these before stage 0 when
// the session's namespaces may outlive it: the holder then becomes the keeper, which
// later exec sessions of the same plan join with setns instead of building a root of
// their own.
static int keep_secs;         // 0: the holder leaves with its session
static int keep_dirfd = -1;   // the environment's directory (the record lives there)
static char keep_line[128];   // the record after "<pid> <start> ": "<token> <ident>"
static char keep_envdir[4096]; // the environment's directory, for the keeper's title
static int holder_wfd = -1;   // PID 1 writes 'K' here once the root is complete
static int root_is_fuse;      // a fuse-overlayfs root dies with its PID namespace
static void (*keeper_hook)(int pipefd, int dirfd);
static int (*holder_start_time)(pid_t pid, unsigned long long *start);

static void send_msg(uint32_t type, int err, const char *stage, const char *text)
{
	struct kp_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.err = err;
	snprintf(m.stage, sizeof(m.stage), "%s", stage);
	snprintf(m.text, sizeof(m.text), "%s", text);
	ssize_t n;
	do {
		n = write(SYNC_FD, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
}

// fail reports a typed error to the Go parent and exits. Exit code 125 marks a launcher
// failure; the parent turns the message into the error it returns.
// In the exec fast path's direct mode the process that set up the namespaces is the
// caller itself, with nobody to report to: its failures go to fail_hook (in that process
// only; its children report over the socket as usual).
static pid_t fail_hook_pid;
static void (*fail_hook)(const char *stage, const char *text);

__attribute__((noreturn, format(printf, 3, 4))) static void fail(const char *stage, int err, const char *fmt, ...)
{
	char text[472];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (err != 0 && n >= 0 && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, ": %s", strerror(err));
	if (fail_hook != NULL && fail_hook_pid == getpid())
		fail_hook(stage, text);
	send_msg(MSG_ERROR, err, stage, text);
	_exit(125);
}

static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static unsigned long long ns_inode(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return (unsigned long long)st.st_ino;
}

// guard_procfd, when set, is the host's /proc, opened before the process joined a
// keeper's namespaces (fastexec.h): the /proc of its new root belongs to another PID
// namespace until the session mounts its own, and shows no "self".
static int guard_procfd = -1;

static int guard_open(const char *rel)
{
	if (guard_procfd >= 0)
		return openat(guard_procfd, rel, O_RDONLY | O_CLOEXEC);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s", rel);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static unsigned long long guard_ns_inode(const char *rel)
{
	if (guard_procfd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%s", rel);
		return ns_inode(path);
	}
	struct stat st;
	if (fstatat(guard_procfd, rel, &st, 0) < 0)
		return 0;
	return (unsigned long long)st.st_ino;
}

// guard refuses to go on unless this process is in a new user namespace (not the
// identity map of the initial one, not the parent's) and a new mount namespace.
static void guard(const char *stage)
{
	char buf[256];
	int fd = guard_open("self/uid_map");
	if (fd < 0)
		fail(stage, errno, "guard: cannot read /proc/self/uid_map");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		fail(stage, EPERM, "guard: empty uid_map: refusing to mount outside a mapped user namespace");
	buf[n] = 0;
	unsigned long long inside, outside, count;
	if (sscanf(buf, "%llu %llu %llu", &inside, &outside, &count) != 3)
		fail(stage, EPERM, "guard: unparsable uid_map: refusing to mount");
	if (inside == 0 && outside == 0 && count == 4294967295ULL)
		fail(stage, EPERM, "guard: running in the initial user namespace: refusing to mount");
	unsigned long long userns = guard_ns_inode("self/ns/user");
	unsigned long long mntns = guard_ns_inode("self/ns/mnt");
	if (userns == 0 || mntns == 0)
		fail(stage, EPERM, "guard: cannot identify own namespaces: refusing to mount");
	if (plan.parent_userns == 0 || userns == plan.parent_userns)
		fail(stage, EPERM, "guard: still in the parent's user namespace: refusing to mount");
	if (plan.parent_mntns == 0 || mntns == plan.parent_mntns)
		fail(stage, EPERM, "guard: still in the parent's mount namespace: refusing to mount");
}

// --- plan decoding: NUL-terminated strings in a fixed order (see plan_linux.go) ---

static char *cur, *end;

static char *next_str(void)
{
	if (cur >= end)
		fail("plan", EINVAL, "truncated plan");
	char *s = cur;
	char *z = memchr(cur, 0, (size_t)(end - cur));
	if (z == NULL)
		fail("plan", EINVAL, "unterminated plan string");
	cur = z + 1;
	return s;
}

static unsigned long long next_num(void)
{
	char *s = next_str();
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno != 0 || *s == 0 || *e != 0)
		fail("plan", EINVAL, "bad number in plan: %.64s", s);
	return v;
}

static char **next_list(void)
{
	unsigned long long n = next_num();
	if (n > 1 << 20)
		fail("plan", EINVAL, "list too long");
	char **l = calloc(n + 1, sizeof(char *));
	if (l == NULL)
		fail("plan", ENOMEM, "out of memory");
	for (unsigned long long i = 0; i < n; i++)
		l[i] = next_str();
	return l;
}

// read_plan reads the plan from the sync socket, unless the exec fast path, which forked
// this process, already holds it in memory (mem, len).
static void read_plan(char *mem, uint32_t len)
{
	char *buf = mem;
	if (buf == NULL) {
		if (read_full(SYNC_FD, &len, sizeof(len)) < 0)
			fail("plan", EIO, "parent closed the sync socket before sending the plan");
		if (len == 0 || len > MAX_PLAN)
			fail("plan", EINVAL, "bad plan length %u", len);
		buf = malloc(len);
		if (buf == NULL)
			fail("plan", ENOMEM, "out of memory");
		if (read_full(SYNC_FD, buf, len) < 0)
			fail("plan", EIO, "short plan");
	}
	cur = buf;
	end = buf + len;
	if (strcmp(next_str(), PLAN_MAGIC) != 0)
		fail("plan", EINVAL, "bad plan magic");
	plan.parent_userns = next_num();
	plan.parent_mntns = next_num();
	plan.tty = (int)next_num();
	plan.netns = (int)next_num();
	plan.readonly = (int)next_num();
	plan.skip_userns = (int)next_num();
	plan.skip_mntns = (int)next_num();
	plan.overlay_mode = next_str();
	plan.fuse_path = next_str();
	plan.hostname = next_str();
	plan.caps = next_num();
	plan.masked = next_list();
	plan.readonly_paths = next_list();
	plan.seccomp = next_str();
	plan.overlay_opts = next_str();
	plan.merged = next_str();
	plan.setup_lock = next_str();
	unsigned long long n = next_num();
	if (n > 4096)
		fail("plan", EINVAL, "too many mounts");
	plan.nmounts = (int)n;
	plan.mounts = calloc(n + 1, sizeof(struct kp_mount));
	if (plan.mounts == NULL)
		fail("plan", ENOMEM, "out of memory");
	for (int i = 0; i < plan.nmounts; i++) {
		struct kp_mount *m = &plan.mounts[i];
		m->type = next_str();
		m->source = next_str();
		m->dest = next_str();
		m->data = next_str();
		m->flags = (unsigned long)next_num();
		m->file = (int)next_num();
		m->optional = (int)next_num();
		m->bind = (int)next_num();
		m->recursive = (int)next_num();
	}
	plan.env = next_list();
	plan.argv = next_list();
	plan.dir = next_str();
	if (plan.argv[0] == NULL)
		fail("plan", EINVAL, "empty argv");
}

// --- mounts ---

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct kp_open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	while (*path == '/')
		path++;
	if (*path == 0)
		path = ".";
	// Another session's overlay over the same upper may just have created this path;
	// this overlay's cached lookup is then stale for a moment. And the kernel answers
	// EAGAIN when a mount or rename anywhere raced the scoped lookup: try again.
	for (int i = 0;; i++) {
		int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd >= 0 || (errno != ESTALE && errno != EAGAIN) || i == 100)
			return fd;
		usleep(1000);
	}
}

// target_in_root returns an O_PATH descriptor of path inside the root, creating missing
// directories (and the last component as an empty file when file is set). Symlinks
// resolve inside the root, so a hostile image cannot point a mount point at the host.
static int target_in_root(int rootfd, const char *path, int file)
{
	int fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int parent = dup(rootfd);
	if (parent < 0)
		return -1;
	char *p = buf;
	while (*p == '/')
		p++;
	while (*p) {
		char *slash = strchr(p, '/');
		int last = 0;
		if (slash)
			*slash = 0;
		if (!slash || slash[1] == 0)
			last = 1;
		int child = openat2_in_root(rootfd, buf, O_PATH);
		if (child < 0 && errno == ENOENT) {
			char *name = strrchr(buf, '/');
			name = name ? name + 1 : buf;
			int r;
			if (last && file) {
				r = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(parent, name, 0755);
			}
			if (r < 0 && errno != EEXIST && errno != ESTALE) {
				close(parent);
				return -1;
			}
			child = openat2_in_root(rootfd, buf, O_PATH);
		}
		if (child < 0) {
			close(parent);
			return -1;
		}
		close(parent);
		parent = child;
		if (!slash)
			break;
		*slash = '/';
		p = slash + 1;
		while (*p == '/')
			p++;
	}
	return parent;
}

static void fd_path(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

// remount_bind applies flags (ro, nosuid, ...) to a bind mount. Inside a user namespace
// the flags the source mount already had are locked; keep them.
static int remount_bind(const char *target, unsigned long flags)
{
	unsigned long f = MS_REMOUNT | MS_BIND | (flags & ~(MS_BIND | MS_REC));
	if (mount(NULL, target, NULL, f, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	struct statvfs sv;
	if (statvfs(target, &sv) < 0)
		return -1;
	unsigned long locked = sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RDONLY | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
	return mount(NULL, target, NULL, f | locked, NULL);
}

static int set_recursive_ro(int fd)
{
	struct kp_mount_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = 1; // MOUNT_ATTR_RDONLY
	return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr));
}

static int dev_tmpfs_mounted;

// open_source opens a bind source once, refusing a symbolic link in any component: the
// Go side checked the resolved path against the mount policy, so a link found now was
// swapped in after that check. The mount is then made from the descriptor, so what was
// opened is what is mounted.
static int open_source(const char *source)
{
	struct kp_open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(O_PATH | O_CLOEXEC);
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	int fd;
	// EAGAIN: a mount or rename raced the lookup (see openat2_in_root).
	for (int i = 0; (fd = (int)syscall(SYS_openat2, AT_FDCWD, source, &how, sizeof(how))) < 0 && errno == EAGAIN && i < 100; i++)
		usleep(1000);
	if (fd < 0 && errno == ENOSYS)
		fd = open(source, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

// do_mount performs one mount of the plan. Its only caller, mount_all, has run guard()
// just before its loop, and nothing between can change the process's namespaces.
static void do_mount(int rootfd, struct kp_mount *m)
{
	struct stat st;
	int is_file = m->file;
	const char *type = m->type;
	const char *source = m->source;
	unsigned long flags = m->flags;
	int bind = m->bind, recursive = m->recursive;
	int srcfd = -1;
	char srcpath[64];
	if (bind) {
		srcfd = open_source(source);
		if (srcfd < 0) {
			if (m->optional && errno == ENOENT)
				return;
			if (errno == ELOOP)
				fail("mount", errno, "bind source %s: a symbolic link is in its path now, which was not there when the mount policy checked it", source);
			fail("mount", errno, "bind source %s", source);
		}
		if (fstat(srcfd, &st) < 0)
			fail("mount", errno, "bind source %s", source);
		if (!S_ISDIR(st.st_mode))
			is_file = 1;
		fd_path(srcpath, sizeof(srcpath), srcfd);
		source = srcpath;
	}
	int tfd = target_in_root(rootfd, m->dest, is_file);
	if (tfd < 0) {
		if (errno == EROFS)
			fail("mount", errno, "mount point %s is missing in the read-only root", m->dest);
		fail("mount", errno, "mount point %s", m->dest);
	}
	char target[64];
	fd_path(target, sizeof(target), tfd);
	int r;
	if (bind) {
		r = mount(source, target, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL);
	} else {
		r = mount(source, target, type, flags, m->data[0] ? m->data : NULL);
		if (r < 0 && errno == EPERM && strcmp(type, "sysfs") == 0) {
			// sysfs needs a network namespace of our own; share the host's, read-only.
			r = mount("/sys", target, NULL, MS_BIND | MS_REC, NULL);
			bind = 1;
			recursive = 1;
			flags |= MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
		}
	}
	if (r < 0)
		fail("mount", errno, "mount %s on %s (%s)", m->source, m->dest, type);
	close(tfd);
	if (srcfd >= 0)
		close(srcfd);
	if (bind && (flags & ~(MS_BIND | MS_REC))) {
		// The descriptor above names what lies under the new mount: reopen the top.
		tfd = openat2_in_root(rootfd, m->dest, O_PATH);
		if (tfd < 0)
			fail("mount", errno, "reopen %s", m->dest);
		fd_path(target, sizeof(target), tfd);
		if (remount_bind(target, flags) < 0)
			fail("mount", errno, "remount %s with its options", m->dest);
		if (recursive && (flags & MS_RDONLY) && set_recursive_ro(tfd) < 0 && errno != ENOSYS)
			fail("mount", errno, "make %s read-only recursively", m->dest);
		close(tfd);
	}
	if (!bind && strcmp(m->dest, "/dev") == 0 && strcmp(type, "tmpfs") == 0)
		dev_tmpfs_mounted = 1;
}

// mount_all proves it is in new namespaces, then performs every mount of the plan.
static void mount_all(int rootfd)
{
	guard("mount");
	for (int i = 0; i < plan.nmounts; i++)
		do_mount(rootfd, &plan.mounts[i]);
}

// mask_path hides one path of the new root: an empty read-only tmpfs over a directory,
// /dev/null over anything else. A path the root does not have is skipped.
static void mask_path(int rootfd, const char *path)
{
	int fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail("mask", errno, "open %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail("mask", errno, "stat %s", path);
	char target[64];
	fd_path(target, sizeof(target), fd);
	int r;
	if (S_ISDIR(st.st_mode))
		r = mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
	else
		r = mount("/dev/null", target, NULL, MS_BIND, NULL);
	if (r < 0)
		fail("mask", errno, "mask %s", path);
	close(fd);
}

// readonly_path binds one path of the new root onto itself, read-only, with every mount
// below it read-only too.
static void readonly_path(int rootfd, const char *path)
{
	int fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail("mask", errno, "open %s", path);
	}
	char target[64];
	fd_path(target, sizeof(target), fd);
	if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail("mask", errno, "bind %s onto itself", path);
	close(fd);
	fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd < 0)
		fail("mask", errno, "reopen %s", path);
	fd_path(target, sizeof(target), fd);
	if (remount_bind(target, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
		fail("mask", errno, "make %s read-only", path);
	if (set_recursive_ro(fd) < 0 && errno != ENOSYS)
		fail("mask", errno, "make %s read-only recursively", path);
	close(fd);
}

// harden applies the plan's masked and read-only paths (only those under /proc when
// proc_only: a session joined to a keeper has its own /proc and the keeper's /sys).
// The command cannot undo them: it keeps no CAP_SYS_ADMIN and may not call mount.
static void harden(int rootfd, int proc_only)
{
	guard("mask");
	for (char **p = plan.masked; *p; p++)
		if (!proc_only || strncmp(*p, "/proc/", 6) == 0)
			mask_path(rootfd, *p);
	for (char **p = plan.readonly_paths; *p; p++)
		if (!proc_only || strncmp(*p, "/proc/", 6) == 0)
			readonly_path(rootfd, *p);
}

// drop_caps leaves the command only the capabilities in keep: the bounding set loses
// the others first (so no execve can regain them), then the permitted, effective and
// inheritable sets are set to keep and the ambient set is cleared.
static void drop_caps(unsigned long long keep)
{
	for (int c = 0; c < 64; c++) {
		if (keep & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; // past the kernel's last capability
			fail("capabilities", errno, "drop capability %d from the bounding set", c);
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail("capabilities", errno, "clear the ambient capabilities");
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(keep >> (32 * i));
		d[i].effective = d[i].permitted = d[i].inheritable = v;
	}
	if (syscall(SYS_capset, &h, d) < 0)
		fail("capabilities", errno, "set the capabilities");
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

// install_seccomp loads the plan's seccomp program (built in Go, seccomp_linux.go). It
// is the last step before execve: no_new_privs is set, so it needs no privilege.
static void install_seccomp(void)
{
	size_t n = strlen(plan.seccomp);
	if (n == 0)
		return;
	if (n % 16 != 0 || n / 16 > 4096)
		fail("seccomp", EINVAL, "malformed seccomp program in the plan");
	size_t count = n / 16;
	struct sock_filter *f = calloc(count, sizeof(*f));
	if (f == NULL)
		fail("seccomp", ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		unsigned char b[8];
		for (int j = 0; j < 8; j++) {
			int hi = hexval(plan.seccomp[16 * i + 2 * j]), lo = hexval(plan.seccomp[16 * i + 2 * j + 1]);
			if (hi < 0 || lo < 0)
				fail("seccomp", EINVAL, "malformed seccomp program in the plan");
			b[j] = (unsigned char)(hi << 4 | lo);
		}
		f[i].code = (uint16_t)(b[0] | b[1] << 8);
		f[i].jt = b[2];
		f[i].jf = b[3];
		f[i].k = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
	}
	struct sock_fprog prog = {.len = (unsigned short)count, .filter = f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		fail("seccomp", errno, "install the seccomp filter");
	free(f);
}

static void dev_links(int rootfd)
{
	static const char *links[][2] = {
		{"ptmx", "pts/ptmx"},       {"fd", "/proc/self/fd"},     {"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
	};
	int dfd = openat2_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
	if (dfd < 0)
		fail("dev", errno, "open /dev");
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (symlinkat(links[i][1], dfd, links[i][0]) < 0 && errno != EEXIST)
			fail("dev", errno, "symlink /dev/%s", links[i][0]);
	}
	close(dfd);
}

static void run_fuse_overlayfs(void)
{
	if (plan.fuse_path[0] == 0)
		fail("overlay", ENOENT, "fuse-overlayfs is not installed");
	pid_t pid = fork();
	if (pid < 0)
		fail("overlay", errno, "fork fuse-overlayfs");
	if (pid == 0) {
		char *argv[] = {"fuse-overlayfs", "-o", plan.overlay_opts, plan.merged, NULL};
		char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execve(plan.fuse_path, argv, envp);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			fail("overlay", errno, "wait for fuse-overlayfs");
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("overlay", EIO, "fuse-overlayfs failed (status %d)", st);
}

static void mount_root(void)
{
	guard("overlay");
	unsigned long flags = plan.readonly ? MS_RDONLY : 0;
	int use_fuse = strcmp(plan.overlay_mode, "fuse") == 0;
	if (!use_fuse) {
		char opts[8192];
		if (snprintf(opts, sizeof(opts), "%s,userxattr", plan.overlay_opts) >= (int)sizeof(opts))
			fail("overlay", ENAMETOOLONG, "overlay options too long");
		if (mount("overlay", plan.merged, "overlay", flags, opts) == 0)
			return;
		int err = errno;
		if (mount("overlay", plan.merged, "overlay", flags, plan.overlay_opts) == 0)
			return;
		if (strcmp(plan.overlay_mode, "kernel") == 0)
			fail("overlay", err, "kernel overlayfs refused the mount (%s)", plan.overlay_opts);
	}
	run_fuse_overlayfs();
	root_is_fuse = 1;
}

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail("network", errno, "socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		fail("network", errno, "get lo flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fail("network", errno, "bring lo up");
	close(s);
}

static void pivot(int rootfd)
{
	guard("pivot");
	if (fchdir(rootfd) < 0)
		fail("pivot", errno, "chdir to the new root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail("pivot", errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		fail("pivot", errno, "detach the old root");
	if (chdir("/") < 0)
		fail("pivot", errno, "chdir /");
}

// send_pty passes the master side of a pty of the new devpts instance to the parent.
static int make_pty(int rootfd)
{
	int master = openat2_in_root(rootfd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY);
	if (master < 0)
		fail("pty", errno, "open /dev/pts/ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail("pty", errno, "unlock pty");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		fail("pty", errno, "open pty peer");
	struct kp_msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_PTY;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(SYNC_FD, &mh, 0) < 0)
		fail("pty", errno, "send the pty to the parent");
	close(master);
	// Wait until the parent has sized the pty like the user's terminal, so the command
	// never sees a 0x0 window.
	uint32_t ack;
	if (read_full(SYNC_FD, &ack, sizeof(ack)) < 0)
		fail("pty", EIO, "the parent did not take the pty");
	return slave;
}

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);
	for (; *env; env++)
		if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

__attribute__((noreturn)) static void exec_command(void)
{
	const char *file = plan.argv[0];
	int err = ENOENT;
	if (strchr(file, '/')) {
		execve(file, plan.argv, plan.env);
		err = errno;
	} else {
		const char *path = env_get(plan.env, "PATH");
		if (path == NULL)
			path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		int saw_eacces = 0;
		while (*path) {
			const char *colon = strchrnul(path, ':');
			size_t dl = (size_t)(colon - path);
			char full[4096];
			if (dl == 0)
				snprintf(full, sizeof(full), "%s", file);
			else
				snprintf(full, sizeof(full), "%.*s/%s", (int)dl, path, file);
			execve(full, plan.argv, plan.env);
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR) {
				err = errno;
				break;
			}
			path = *colon ? colon + 1 : colon;
		}
		if (err == ENOENT && saw_eacces)
			err = EACCES;
	}
	char text[472];
	snprintf(text, sizeof(text), "%s: %s", file, strerror(err));
	send_msg(MSG_ERROR, err, "exec", text);
	_exit(err == ENOENT ? 127 : 126);
}

static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 125;
}

// supervise blocks every signal, reaps children and forwards signals to child until it
// exits, then exits with its status. Signals the kernel sent (a terminal's ^C reaches the
// whole process group already) are not forwarded twice.
__attribute__((noreturn)) static void supervise(pid_t child, sigset_t *all, int reap_all)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(all, &si);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			for (;;) {
				int st;
				pid_t r = waitpid(reap_all ? -1 : child, &st, WNOHANG);
				if (r <= 0)
					break;
				if (r == child)
					_exit(exit_code(st));
			}
			continue;
		}
		if (si.si_code == SI_KERNEL)
			continue;
		kill(child, sig);
	}
}

__attribute__((noreturn)) static void run_session(int slave, sigset_t *all);

// leave_session puts this process in a new session of its own, with no controlling
// terminal: nothing inside the sandbox can then push input into the user's terminal
// (TIOCSTI on an inherited descriptor needs it to be the controlling one), whatever
// descriptors of it the command holds. The terminal's ^C reaches stage 0 (or the exec
// fast path), which stays in the user's session and forwards it.
static void leave_session(void)
{
	if (setsid() < 0)
		fail("setup", errno, "setsid");
}

// pid1 runs as the init of the new PID namespace: it builds the root, then starts the
// command and supervises it.
__attribute__((noreturn)) static void pid1(sigset_t *all)
{
	// If stage 0 is killed, take the whole PID namespace down with it.
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail("setup", errno, "set the parent death signal");
	leave_session();
	guard("setup");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail("setup", errno, "make / private");
	if (plan.hostname[0] && sethostname(plan.hostname, strlen(plan.hostname)) < 0)
		fail("setup", errno, "sethostname");
	// Sessions of one environment share its upper layer. An overlay mounted while
	// another session creates mount points in that upper keeps stale negative dentries
	// for them, so mounting and creating mount points is serialized per environment.
	int lock = open(plan.setup_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		fail("setup", errno, "open %s", plan.setup_lock);
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			fail("setup", errno, "lock %s", plan.setup_lock);
	mount_root();
	int rootfd = open(plan.merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail("setup", errno, "open the merged root");
	mount_all(rootfd);
	if (dev_tmpfs_mounted)
		dev_links(rootfd);
	harden(rootfd, 0);
	close(lock);
	int slave = -1;
	if (plan.tty)
		slave = make_pty(rootfd);
	if (plan.netns)
		lo_up();
	pivot(rootfd);
	close(rootfd);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("setup", errno, "no_new_privs");
	// The root is complete: the holder may keep it for later sessions, unless a
	// fuse-overlayfs daemon of this PID namespace serves it.
	if (keep_secs > 0 && holder_wfd >= 0 && !root_is_fuse) {
		ssize_t k;
		do {
			k = write(holder_wfd, "K", 1);
		} while (k < 0 && errno == EINTR);
	}
	run_session(slave, all);
}

// run_session starts the command (on the pty's slave when there is one) and supervises
// it as the PID namespace's init.
__attribute__((noreturn)) static void run_session(int slave, sigset_t *all)
{
	pid_t child = fork();
	if (child < 0)
		fail("start", errno, "fork");
	if (child == 0) {
		sigset_t none;
		sigemptyset(&none);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		// PID 1 left the user's session; the command gets one of its own too, the
		// pty's when there is one.
		if (setsid() < 0)
			fail("start", errno, "setsid");
		if (slave >= 0) {
			if (ioctl(slave, TIOCSCTTY, 0) < 0)
				fail("pty", errno, "set the controlling terminal");
			if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
				fail("pty", errno, "dup the pty");
			if (slave > 2)
				close(slave);
		}
		if (chdir(plan.dir) < 0)
			fail("exec", errno, "chdir %s", plan.dir);
		drop_caps(plan.caps);
		install_seccomp();
		exec_command();
	}
	if (slave >= 0)
		close(slave);
	close(SYNC_FD);
	supervise(child, all, 1);
}

// replace_proc mounts a new proc on /proc in place of the one there: 0 when done, -1
// when nothing was changed, -2 when the old one is gone and the new one could not take
// its place.
static int replace_proc(const struct kp_mount *proc)
{
	int fs = (int)syscall(SYS_fsopen, "proc", 1 /* FSOPEN_CLOEXEC */);
	if (fs < 0)
		return -1;
	if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) {
		close(fs);
		return -1;
	}
	unsigned int attrs = 0;
	if (proc->flags & MS_NOSUID)
		attrs |= 0x2; // MOUNT_ATTR_NOSUID
	if (proc->flags & MS_NODEV)
		attrs |= 0x4; // MOUNT_ATTR_NODEV
	if (proc->flags & MS_NOEXEC)
		attrs |= 0x8; // MOUNT_ATTR_NOEXEC
	int m = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, attrs);
	close(fs);
	if (m < 0)
		return -1;
	if (umount2("/proc", MNT_DETACH) < 0) {
		close(m);
		return -1;
	}
	if (syscall(SYS_move_mount, m, "", AT_FDCWD, "/proc", 0x4 /* MOVE_MOUNT_F_EMPTY_PATH */) < 0) {
		int err = errno;
		close(m);
		errno = err;
		return -2;
	}
	close(m);
	return 0;
}

// pid1_join is the init of a session that joined the keeper's namespaces (fastexec.h):
// its root is the keeper's, complete; it needs only a /proc of its own PID namespace,
// mounted in its own copy of the keeper's mount namespace.
__attribute__((noreturn)) static void pid1_join(sigset_t *all)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail("setup", errno, "set the parent death signal");
	leave_session();
	struct kp_mount *proc = NULL;
	for (int i = 0; i < plan.nmounts; i++)
		if (strcmp(plan.mounts[i].type, "proc") == 0 && strcmp(plan.mounts[i].dest, "/proc") == 0)
			proc = &plan.mounts[i];
	if (proc == NULL)
		fail("setup", EINVAL, "the plan mounts no /proc");
	guard("proc");
	// The keeper's /proc (of a PID namespace that is gone) is replaced, not covered, so
	// the session's mount table is the one a session of its own would have: a new
	// proc mount is made detached while the old one still proves proc may be mounted
	// here (the kernel refuses a proc mount that would reveal more than a visible one),
	// then takes the old one's place. Kernels without the mount API stack it instead.
	int r = replace_proc(proc);
	if (r == -2)
		fail("mount", errno, "move the new proc onto /proc");
	if (r < 0 && mount(proc->source, "/proc", "proc", proc->flags, proc->data[0] ? proc->data : NULL) < 0)
		fail("mount", errno, "mount proc on /proc (proc)");
	int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail("mask", errno, "open /");
	harden(rootfd, 1);
	close(rootfd);
	close(guard_procfd);
	guard_procfd = -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("setup", errno, "no_new_privs");
	run_session(-1, all);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail("userns", errno, "open %s", path);
	ssize_t n = write(fd, data, strlen(data));
	if (n != (ssize_t)strlen(data))
		fail("userns", errno, "write %s", path);
	close(fd);
}

// self_map maps root of the new user namespace to our own ids, the one mapping a process
// may write for itself (after denying setgroups, as the kernel requires).
static void self_map(uid_t euid, gid_t egid)
{
	char buf[64];
	write_file("/proc/self/setgroups", "deny");
	snprintf(buf, sizeof(buf), "0 %u 1\n", (unsigned)egid);
	write_file("/proc/self/gid_map", buf);
	snprintf(buf, sizeof(buf), "0 %u 1\n", (unsigned)euid);
	write_file("/proc/self/uid_map", buf);
}

// start_holder forks a process that shares our namespaces and lives until stage 0 and
// PID 1 are gone (it waits for EOF on a pipe they hold). The last process to leave the
// mount namespace tears it down, unmounting the overlay, which syncs the upper file
// system: that can take long on a busy disk. The holder pays for it after the command's
// status has been reported. It also keeps the session slot's lock, so the slot's work
// directory is not reused before the overlay is gone. With keep_secs set, it becomes
// the environment's keeper (keeper_hook) once PID 1 reports a complete root.
static void start_holder(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("namespaces", errno, "pipe");
	pid_t holder = fork();
	if (holder < 0)
		fail("namespaces", errno, "fork the namespace holder");
	if (holder == 0) {
		// Keep only the pipe (moved to fd 5), the slot lock (fd 4) and, for a keeper,
		// the environment's directory (fd 6).
		int keep = keep_secs > 0 && keep_dirfd >= 0 && keeper_hook != NULL;
		// Through copies above both targets: either may itself be 5 or 6.
		int pr = fcntl(p[0], F_DUPFD, 10);
		int kd = keep ? fcntl(keep_dirfd, F_DUPFD, 10) : -1;
		if (pr < 0 || (keep && kd < 0) || dup2(pr, 5) < 0 || (keep && dup2(kd, 6) < 0))
			_exit(125);
		for (int fd = 0; fd < 4; fd++)
			close(fd);
		int from = keep ? 7 : 6;
		if (syscall(SYS_close_range, from, ~0U, 0) < 0)
			for (int fd = from; fd < 1024; fd++)
				close(fd);
		p[0] = 5;
		// The holder (and a keeper) outlives the command: out of the user's session.
		(void)setsid();
		if (keep)
			keeper_hook(5, 6);
		char c;
		for (;;) {
			ssize_t r = read(p[0], &c, 1);
			if (r == 0 || (r < 0 && errno != EINTR))
				break;
		}
		_exit(0);
	}
	close(p[0]);
	// Stage 0 and PID 1 keep p[1] until they exit; the command loses it at execve.
	holder_wfd = p[1];
	if (keep_secs > 0 && keeper_hook != NULL) {
		// A keeper names itself by pid and start time; once PID 1 has pivoted, its
		// /proc no longer shows it, so it learns its start time from here, first.
		unsigned long long start = 0;
		if (holder_start_time(holder, &start) < 0)
			start = 0;
		ssize_t k;
		do {
			k = write(holder_wfd, &start, sizeof(start));
		} while (k < 0 && errno == EINTR);
	}
	(void)fcntl(SLOT_FD, F_SETFD, FD_CLOEXEC);
}

// stage0_setup is the first half of stage 0, in the process the Go parent started (or
// the exec fast path forked, or the fast path itself: the first word and the plan in
// memory, mem != NULL): it creates the user namespace, lets the parent write the id maps,
// creates the other namespaces and forks the PID 1, whose pid it returns. Every signal is
// blocked when it returns.
static pid_t stage0_setup(uint32_t mem_want, char *mem, uint32_t mem_len)
{
	if (fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC) < 0)
		_exit(125);
	(void)fcntl(SLOT_FD, F_SETFD, FD_CLOEXEC);
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);

	// The user namespace first, so the other namespaces belong to it.
	uid_t euid = geteuid();
	gid_t egid = getegid();
	uint32_t want = mem_want;
	if (mem == NULL && read_full(SYNC_FD, &want, sizeof(want)) < 0)
		_exit(125);
	if (want & WANT_USERNS) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail("userns", errno, "unshare(CLONE_NEWUSER)");
	}
	if (want & WANT_SELFMAP)
		self_map(euid, egid);
	read_plan(mem, mem_len);
	int flags = CLONE_NEWUTS | CLONE_NEWIPC;
	if (!plan.skip_mntns)
		flags |= CLONE_NEWNS;
	if (plan.netns)
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0)
		fail("namespaces", errno, "unshare(%#x)", flags);
	start_holder();
	if (want & WANT_PARENT) {
		// The parent writes wider maps (newuidmap) and joins us to the cgroup; the
		// holder, forked just before, stays out of the session's cgroup.
		send_msg(MSG_USERNS, 0, "userns", "");
		uint32_t go;
		if (read_full(SYNC_FD, &go, sizeof(go)) < 0)
			_exit(125);
	}
	if (unshare(CLONE_NEWPID) < 0)
		fail("namespaces", errno, "unshare(CLONE_NEWPID)");
	pid_t child = fork();
	if (child < 0)
		fail("namespaces", errno, "fork the namespace init");
	if (child == 0)
		pid1(&all);
	return child;
}

// stage0 is the process the Go parent started (or the fast path forked): it sets up the
// namespaces, then relays signals to the PID 1 and exits with its status.
__attribute__((noreturn)) static void stage0(uint32_t mem_want, char *mem, uint32_t mem_len)
{
	pid_t child = stage0_setup(mem_want, mem, mem_len);
	sigset_t all;
	sigfillset(&all);
	close(SYNC_FD);
	supervise(child, &all, 0);
}

// unshare_main runs argv[2..] as root of a new user namespace whose maps the Go parent
// writes (unshare_linux.go: the caller's full map, as `podman unshare`): files owned by
// the caller's subordinate ids are then the command's own. Nothing else changes: no
// mount or other namespace, the caller's root and environment.
//
//	P                          U
//	| start U -----------------> | unshare(NEWUSER)
//	| <------------ USERNS msg --|
//	| newuidmap, newgidmap       |
//	| -- u32 go ---------------->| setresgid/setresuid(0), setgroups(0), execvp
//	| <------ ERROR msg (on failure) or EOF at execve (fd 3 is close-on-exec)
__attribute__((noreturn)) static void unshare_main(char **argv)
{
	if (fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC) < 0)
		_exit(125);
	if (argv[2] == NULL)
		fail("unshare", EINVAL, "no command");
	if (unshare(CLONE_NEWUSER) < 0)
		fail("unshare", errno, "unshare(CLONE_NEWUSER)");
	send_msg(MSG_USERNS, 0, "unshare", "");
	uint32_t go;
	if (read_full(SYNC_FD, &go, sizeof(go)) < 0)
		_exit(125);
	if (setresgid(0, 0, 0) < 0)
		fail("unshare", errno, "setresgid(0)");
	// With the single self-mapping setgroups is denied, and there are no others.
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		fail("unshare", errno, "setgroups");
	if (setresuid(0, 0, 0) < 0)
		fail("unshare", errno, "setresuid(0)");
	execvp(argv[2], argv + 2);
	int err = errno;
	char text[472];
	snprintf(text, sizeof(text), "%s: %s", argv[2], strerror(err));
	send_msg(MSG_ERROR, err, "exec", text);
	_exit(err == ENOENT ? 127 : 126);
}

__attribute__((constructor)) static void karapace_nsinit(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 2 || argv == NULL || argv[1] == NULL)
		return;
	if (strcmp(argv[1], UNSHARE_ARG) == 0)
		unshare_main(argv);
	if (strcmp(argv[1], NSINIT_ARG) != 0)
		return;
	stage0(0, NULL, 0);
}

#include "fastexec.h"
