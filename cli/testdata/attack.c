// attack is a hostile program for the escape tests (escape_e2e_test.go): run inside an
// environment, it tries each way out that docs/security-model.md says is closed and
// prints one line per attempt, "NAME: REFUSED (why)" or "NAME: ESCAPED (how)". It never
// changes host state when an attempt would succeed: writes are probed by opening for
// writing, and a remount that succeeded is reported, not used.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int escaped;

static void report(const char *name, int ok, const char *detail)
{
	printf("%s: %s (%s)\n", name, ok ? "REFUSED" : "ESCAPED", detail);
	if (!ok)
		escaped = 1;
}

// refused: a call that returned r (with errno) was refused.
static void refused(const char *name, long r)
{
	char d[128];
	if (r < 0)
		snprintf(d, sizeof(d), "%s", strerror(errno));
	else
		snprintf(d, sizeof(d), "the call succeeded");
	report(name, r < 0, d);
}

// push_input pushes "#\n" into fd's terminal: the user's shell would read a line.
static long push_input(int fd)
{
	char line[] = "#\n";
	long r = 0;
	for (int i = 0; i < 2 && r == 0; i++)
		r = ioctl(fd, TIOCSTI, &line[i]);
	return r;
}

static void tiocsti(void)
{
	char c = '#';
	// On the standard streams, whatever they are (the user's terminal in the test).
	for (int fd = 0; fd < 3; fd++) {
		char name[32];
		snprintf(name, sizeof(name), "tiocsti-fd%d", fd);
		refused(name, push_input(fd));
	}
	int t = open("/dev/tty", O_RDWR | O_NOCTTY);
	if (t < 0) {
		report("tiocsti-devtty", 1, strerror(errno));
	} else {
		refused("tiocsti-devtty", push_input(t));
		close(t);
	}
	// The filter itself: on a descriptor that is no terminal the kernel says ENOTTY,
	// the seccomp rule says EPERM first. The request's high bits must not matter.
	int n = open("/dev/null", O_RDWR);
	long r = syscall(SYS_ioctl, n, 0x5412UL, &c);
	report("seccomp-tiocsti", r < 0 && errno == EPERM, strerror(errno));
	r = syscall(SYS_ioctl, n, 0x100005412UL, &c);
	report("seccomp-tiocsti-highbits", r < 0 && errno == EPERM, strerror(errno));
	r = syscall(SYS_ioctl, n, 0x541cUL, &c);
	report("seccomp-tioclinux", r < 0 && errno == EPERM, strerror(errno));
	close(n);
}

static void sysctl_write(const char *path)
{
	int fd = open(path, O_WRONLY);
	char name[96];
	snprintf(name, sizeof(name), "sysctl-write %s", path);
	if (fd >= 0)
		close(fd);
	refused(name, fd);
}

static void remount_rw(const char *path)
{
	char name[96];
	snprintf(name, sizeof(name), "remount-rw %s", path);
	struct stat st;
	if (stat(path, &st) < 0) {
		report(name, 1, "not present");
		return;
	}
	refused(name, mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL));
}

static void caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long eff = ~0ULL, bnd = ~0ULL;
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "CapEff: %llx", &eff);
		sscanf(line, "CapBnd: %llx", &bnd);
	}
	if (f)
		fclose(f);
	char d[96];
	snprintf(d, sizeof(d), "CapEff %016llx CapBnd %016llx", eff, bnd);
	// CAP_SYS_ADMIN 21, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_TIME 25, CAP_MKNOD 27
	unsigned long long bad = 1ULL << 21 | 1ULL << 16 | 1ULL << 17 | 1ULL << 25 | 1ULL << 27;
	report("capabilities", (eff & bad) == 0 && (bnd & bad) == 0, d);
}

static void fresh_proc(void)
{
	mkdir("/tmp/attack-proc", 0755);
	refused("mount-proc", mount("proc", "/tmp/attack-proc", "proc", 0, NULL));
	refused("mount-sysfs", mount("sysfs", "/tmp/attack-proc", "sysfs", 0, NULL));
	refused("umount-mask", umount2("/proc/kcore", MNT_DETACH));
	refused("unshare-userns", unshare(CLONE_NEWUSER));
	refused("unshare-mntns", unshare(CLONE_NEWNS));
	// clone with namespace flags, straight to the kernel.
	long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	refused("clone-userns", pid);
	refused("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
}

static void masked(const char *path)
{
	char name[96];
	snprintf(name, sizeof(name), "masked %s", path);
	struct stat st;
	if (stat(path, &st) < 0) {
		report(name, 1, strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		// An empty tmpfs: nothing listed in it.
		char cmd[160];
		snprintf(cmd, sizeof(cmd), "[ -z \"$(ls -A %s)\" ]", path);
		report(name, system(cmd) == 0, "directory listing");
		return;
	}
	int isnull = S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
	report(name, isnull, isnull ? "/dev/null" : "readable");
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	int all = strcmp(what, "all") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (all || strcmp(what, "tty") == 0)
		tiocsti();
	if (all || strcmp(what, "kernel") == 0) {
		sysctl_write("/proc/sys/vm/swappiness");
		sysctl_write("/proc/sys/kernel/core_pattern");
		sysctl_write("/proc/sysrq-trigger");
		remount_rw("/etc/hosts");
		remount_rw("/etc/resolv.conf");
		remount_rw("/sys");
		remount_rw("/sys/fs/cgroup");
		remount_rw("/proc/sys");
		caps();
		fresh_proc();
		masked("/proc/kcore");
		masked("/proc/keys");
		masked("/proc/timer_list");
		masked("/sys/firmware");
	}
	printf("attack done: %s\n", escaped ? "ESCAPED" : "all refused");
	return escaped ? 1 : 0;
}
