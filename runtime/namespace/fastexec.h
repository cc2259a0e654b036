// The native exec fast path, included at the end of nsinit.c (cgo compiles only .c
// files, so this one is not compiled twice). The plan format and its writer are in
// fastexec_linux.go.
//
// `karapace exec REF -- CMD...` (nothing else on the command line) is caught here,
// before the Go runtime starts. The constructor reads the plan an earlier exec of the
// same environment left, checks every fact it was computed from, takes the shared store
// lock, checks the WAL is empty and the environment's record is byte for byte what the
// plan was made for, records a session claim, releases the lock and runs the sandbox by
// forking stage 0 of the launcher directly. Anything it cannot vouch for before the fork
// makes it undo what it did and return: the Go runtime starts and the full path runs
// (and writes a fresh plan). KARAPACE_FASTEXEC=off disables it; =require makes a fall
// back an error (exit 125), which the tests use to prove the fast path ran.
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <time.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#define FX_KEEP_DEFAULT 60
#define FX_KEEP_MAX 86400

#define FX_MAGIC "KPFX3"
#define FX_MAX_PLAN (16 << 20)

struct fx_reader {
	char *cur, *end;
	int bad;
};

static char *fx_str(struct fx_reader *r)
{
	if (r->bad || r->cur >= r->end) {
		r->bad = 1;
		return "";
	}
	char *s = r->cur;
	char *z = memchr(r->cur, 0, (size_t)(r->end - r->cur));
	if (z == NULL) {
		r->bad = 1;
		return "";
	}
	r->cur = z + 1;
	return s;
}

static unsigned long long fx_num(struct fx_reader *r)
{
	char *s = fx_str(r);
	if (r->bad)
		return 0;
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno != 0 || *s == 0 || *e != 0)
		r->bad = 1;
	return v;
}

static char *fx_blob(struct fx_reader *r, size_t *len)
{
	unsigned long long n = fx_num(r);
	if (r->bad || n > (unsigned long long)(r->end - r->cur)) {
		r->bad = 1;
		*len = 0;
		return "";
	}
	char *b = r->cur;
	r->cur += n;
	*len = (size_t)n;
	return b;
}

// fx_list returns the items of a list in place (pointers into the plan).
static char **fx_list(struct fx_reader *r)
{
	unsigned long long n = fx_num(r);
	if (r->bad || n > 65536) {
		r->bad = 1;
		return NULL;
	}
	char **l = calloc(n + 1, sizeof(char *));
	if (l == NULL) {
		r->bad = 1;
		return NULL;
	}
	for (unsigned long long i = 0; i < n; i++)
		l[i] = fx_str(r);
	return l;
}

// fx_read_file reads a whole small file; -1 when it cannot.
static int fx_read_file(const char *path, char **out, size_t *len, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		return -1;
	}
	size_t want = (size_t)st.st_size;
	char *buf = malloc(want + 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != want) {
		free(buf);
		return -1;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

static int fx_write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

// The kinds of sandbox.Kind.
static int fx_kind(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode))
		return 1;
	if (S_ISREG(st.st_mode))
		return 2;
	if (S_ISSOCK(st.st_mode))
		return 3;
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		return 4;
	return 5;
}

// fx_start_time is field 22 of /proc/<pid>/stat.
static int fx_proc_stat(pid_t pid, char *state, unsigned long long *start);

static int fx_start_time(pid_t pid, unsigned long long *start)
{
	char state;
	return fx_proc_stat(pid, &state, start);
}

// fx_proc_stat reads the state (field 3: 'Z' for a zombie) and the start time (field
// 22) of /proc/<pid>/stat.
static int fx_proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	// /proc files report size 0: read them with a plain loop.
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char tmp[1024];
	ssize_t n = read(fd, tmp, sizeof(tmp) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	tmp[n] = 0;
	buf = strrchr(tmp, ')');
	if (buf == NULL)
		return -1;
	// After ") " come fields 3, 4, ...; the start time is field 22.
	char *p = buf + 1;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == 0)
			return -1;
		if (field == 3)
			*state = *p;
		if (field == 22) {
			char *e;
			errno = 0;
			*start = strtoull(p, &e, 10);
			return errno == 0 && e != p ? 0 : -1;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -1;
}

static int fx_valid_key(const char *k, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
			continue;
		if (c >= '0' && c <= '9' && i > 0)
			continue;
		return 0;
	}
	return 1;
}

// fx_eq compares n bytes, ASCII case folded when fold is set (the deny list's rule).
static int fx_eq(const char *a, const char *b, size_t n, int fold)
{
	if (!fold)
		return memcmp(a, b, n) == 0;
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = b[i];
		if (x >= 'a' && x <= 'z')
			x = (char)(x - 32);
		if (y >= 'a' && y <= 'z')
			y = (char)(y - 32);
		if (x != y)
			return 0;
	}
	return 1;
}

// fx_match mirrors sandbox.matchPattern: "*x*" contains, "*x" suffix, "x*" prefix;
// with fold, in any ASCII case (sandbox.EnvDenied).
static int fx_match(const char *pat, const char *key, size_t klen, int fold)
{
	size_t pl = strlen(pat);
	if (pl > 1 && pat[0] == '*' && pat[pl - 1] == '*') {
		size_t nl = pl - 2;
		if (nl > klen)
			return 0;
		for (size_t i = 0; i + nl <= klen; i++)
			if (fx_eq(key + i, pat + 1, nl, fold))
				return 1;
		return 0;
	}
	if (pl > 0 && pat[0] == '*')
		return pl - 1 <= klen && fx_eq(key + klen - (pl - 1), pat + 1, pl - 1, fold);
	if (pl > 0 && pat[pl - 1] == '*')
		return pl - 1 <= klen && fx_eq(key, pat, pl - 1, fold);
	return pl == klen && fx_eq(key, pat, klen, fold);
}

static int fx_match_any(char **pats, const char *key, size_t klen, int fold)
{
	for (; pats && *pats; pats++)
		if (fx_match(*pats, key, klen, fold))
			return 1;
	return 0;
}

static int fx_envcmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t xl = strcspn(x, "="), yl = strcspn(y, "=");
	int c = memcmp(x, y, xl < yl ? xl : yl);
	if (c != 0)
		return c;
	return xl < yl ? -1 : xl > yl;
}

// A growable buffer for the launcher's plan.
struct fx_buf {
	char *p;
	size_t len, cap;
	int bad;
};

static void fx_put(struct fx_buf *b, const void *data, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->bad = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void fx_put_str(struct fx_buf *b, const char *s) { fx_put(b, s, strlen(s) + 1); }

static void fx_put_num(struct fx_buf *b, unsigned long long v)
{
	char n[32];
	snprintf(n, sizeof(n), "%llu", v);
	fx_put_str(b, n);
}

static void fx_put_list(struct fx_buf *b, char **l, int n)
{
	fx_put_num(b, (unsigned long long)n);
	for (int i = 0; i < n; i++)
		fx_put_str(b, l[i]);
}

// fx_launcher_plan appends the launcher's plan, as fastexec_linux.go's flatPlan.encode
// would write it, from the pieces the fast-path plan keeps and this session's own.
static void fx_launcher_plan(struct fx_buf *b, const char *head, size_t headlen, const char *ovl, const char *merged,
			     const char *mounts, size_t mountslen, char **env, int nenv, char **cmd, int ncmd, const char *dir)
{
	fx_put_str(b, PLAN_MAGIC);
	fx_put_num(b, ns_inode("/proc/self/ns/user"));
	fx_put_num(b, ns_inode("/proc/self/ns/mnt"));
	fx_put(b, head, headlen);
	fx_put_str(b, ovl);
	fx_put_str(b, merged);
	fx_put(b, mounts, mountslen);
	fx_put_list(b, env, nenv);
	fx_put_list(b, cmd, ncmd);
	fx_put_str(b, dir);
}

// What the fast path has done so far, to undo on a fall back.
struct fx_state {
	int lockfd, slotfd;
	char claim[PATH_MAX];
	char record[PATH_MAX];
	// In direct mode the claim and the record are named relative to directories opened
	// before the namespaces: PID 1's pivot_root changes this process's root too.
	int claimsfd, sessionsfd;
	char claim_name[64], record_name[64];
};

static void fx_undo(struct fx_state *st)
{
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->slotfd >= 0)
		close(st->slotfd);
	if (st->claim[0])
		unlink(st->claim);
	if (st->record[0])
		unlink(st->record);
	if (st->claimsfd >= 0 && st->claim_name[0])
		unlinkat(st->claimsfd, st->claim_name, 0);
	if (st->sessionsfd >= 0 && st->record_name[0])
		unlinkat(st->sessionsfd, st->record_name, 0);
	st->lockfd = st->slotfd = -1;
	st->claim[0] = st->record[0] = st->claim_name[0] = st->record_name[0] = 0;
}

// fx_fallback undoes what was done and returns to the Go path (or, when the fast path
// is required, says why and exits 125).
static int fx_required;
static int fx_fallback(struct fx_state *st, const char *why)
{
	fx_undo(st);
	if (fx_required) {
		dprintf(2, "karapace: exec fast path not taken: %s\n", why);
		_exit(125);
	}
	return 0;
}

// fx_store_root mirrors the CLI's storePath (flag, else $KARAPACE_STORE, else the
// default); -1 when it would need more than that.
static int fx_store_root(const char *flag, char *out, size_t n)
{
	const char *p = flag && *flag ? flag : getenv("KARAPACE_STORE");
	const char *home = getenv("HOME");
	if (p == NULL || *p == 0) {
		if (home == NULL || *home == 0)
			return -1;
		return snprintf(out, n, "%s/.local/share/karapace", home) < (int)n ? 0 : -1;
	}
	if (strcmp(p, "~") == 0 || strncmp(p, "~/", 2) == 0) {
		if (home == NULL || *home == 0)
			return -1;
		return snprintf(out, n, "%s%s", home, p + 1) < (int)n ? 0 : -1;
	}
	if (p[0] != '/')
		return -1; // relative: the Go path makes it absolute
	return snprintf(out, n, "%s", p) < (int)n ? 0 : -1;
}

static int fx_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int fx_valid_ref(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

// fx_dir_empty reports whether a directory holds no entry (a missing one is empty).
static int fx_dir_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int fx_run_tool(const char *tool, pid_t pid, char **map)
{
	char *argv[1 + 1 + 3 * 340 + 1];
	char pidbuf[32];
	int a = 0;
	argv[a++] = (char *)tool;
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	argv[a++] = pidbuf;
	// Each map line is "inside outside count": split it into three arguments.
	static char fields[340][3][24];
	int line = 0;
	for (; map && map[line] && line < 340; line++) {
		if (sscanf(map[line], "%23s %23s %23s", fields[line][0], fields[line][1], fields[line][2]) != 3)
			return -1;
		argv[a++] = fields[line][0];
		argv[a++] = fields[line][1];
		argv[a++] = fields[line][2];
	}
	argv[a] = NULL;
	pid_t t = fork();
	if (t < 0)
		return -1;
	if (t == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		execve(tool, argv, envp);
		_exit(127);
	}
	int status;
	while (waitpid(t, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int fx_write_maps(pid_t pid, int rootmaps, const char *newgidmap, const char *newuidmap, char **gidmap, char **uidmap)
{
	if (rootmaps) {
		char path[64], data[8192];
		size_t off;
		char **maps[2] = {gidmap, uidmap};
		const char *files[2] = {"gid_map", "uid_map"};
		for (int i = 0; i < 2; i++) {
			off = 0;
			data[0] = 0;
			for (char **l = maps[i]; l && *l; l++) {
				int n = snprintf(data + off, sizeof(data) - off, "%s\n", *l);
				if (n < 0 || (size_t)n >= sizeof(data) - off)
					return -1;
				off += (size_t)n;
			}
			snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
			if (fx_write_file(path, data) < 0)
				return -1;
		}
		return 0;
	}
	if (fx_run_tool(newgidmap, pid, gidmap) < 0)
		return -1;
	return fx_run_tool(newuidmap, pid, uidmap);
}

__attribute__((noreturn)) static void fx_exit_error(struct fx_state *st, const char *stage, const char *text)
{
	fx_undo(st);
	dprintf(2, "error: runtime error: %s: %s\n", stage, text);
	_exit(1);
}

// The state fx_direct_fail cleans up (this process's own, in direct mode).
static struct fx_state *fx_direct_state;

__attribute__((noreturn)) static void fx_direct_fail(const char *stage, const char *text)
{
	fx_exit_error(fx_direct_state, stage, text);
}

// fx_direct prepares direct mode, where this process is stage 0 itself (no fork, no
// hand-off): possible when stage 0 needs nothing from a parent (it maps its own ids). It
// records the session under this process's pid, moves the socket's child end to fd 3 and
// the slot lock to fd 4, and returns the socket's parent end; -1 when it cannot (then
// nothing was changed and stage 0 is forked as usual).
static int fx_direct(struct fx_state *st, const char *sessionsdir, unsigned long long start)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	int sock = fcntl(sp[0], F_DUPFD_CLOEXEC, 10);
	int a = fcntl(sp[1], F_DUPFD_CLOEXEC, 10);
	// A session that joins a keeper has no slot of its own.
	int c = st->slotfd >= 0 ? fcntl(st->slotfd, F_DUPFD_CLOEXEC, 10) : -2;
	close(sp[0]);
	close(sp[1]);
	if (sock < 0 || a < 0 || c == -1) {
		if (sock >= 0)
			close(sock);
		if (a >= 0)
			close(a);
		if (c >= 0)
			close(c);
		return -1;
	}
	if (c >= 0)
		close(st->slotfd);
	if (dup2(a, SYNC_FD) < 0 || (c >= 0 && dup2(c, SLOT_FD) < 0))
		_exit(125); // cannot happen with valid descriptors
	close(a);
	if (c >= 0) {
		close(c);
		st->slotfd = SLOT_FD;
	}
	const char *slash = strrchr(st->claim, '/');
	if (mkdir(sessionsdir, 0755) < 0 && errno != EEXIST)
		return sock;
	st->sessionsfd = open(sessionsdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (slash != NULL) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - st->claim), st->claim);
		st->claimsfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (st->claimsfd >= 0) {
			snprintf(st->claim_name, sizeof(st->claim_name), "%s", slash + 1);
			st->claim[0] = 0;
		}
	}
	if (st->sessionsfd >= 0) {
		char tmp[64], line[64];
		pid_t self = getpid();
		snprintf(tmp, sizeof(tmp), ".%d.tmp", (int)self);
		snprintf(st->record_name, sizeof(st->record_name), "%d", (int)self);
		snprintf(line, sizeof(line), "%d %llu\n", (int)self, start);
		int fd = openat(st->sessionsfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int ok = fd >= 0 && write(fd, line, strlen(line)) == (ssize_t)strlen(line);
		if (fd >= 0)
			close(fd);
		if (!ok || renameat(st->sessionsfd, tmp, st->sessionsfd, st->record_name) < 0) {
			unlinkat(st->sessionsfd, tmp, 0);
			st->record_name[0] = 0;
		}
	}
	return sock;
}

// --- the environment keeper ---
//
// The holder of a fast-path session (start_holder in nsinit.c) becomes the environment's
// keeper once PID 1 reports a complete root: it keeps the namespaces, and so the mounted
// overlay root, alive after the session, and records itself in <env>/keeper as
// "<pid> <start> <token> <ident>". token is the fast-path plan's checksum; ident is a
// checksum of the device and inode of every path the root was built from (the upper
// and lower directories, every bind source). A later exec whose plan and paths give the
// same two values joins the keeper with setns instead of mounting a root of its own
// (fx_join). Each joined session holds a shared lock on the record while it runs and
// signals the keeper (SIGUSR1) when it starts and ends. The keeper leaves
// KARAPACE_KEEP_ALIVE seconds (default 60, 0 disables keepers) after the last session,
// at once on SIGTERM (stop, destroy, restore), when its environment's directory is
// deleted, or when another keeper replaced its record. Joined sessions do not depend on
// it: namespaces live as long as any process in them.

// fx_keep_secs reads KARAPACE_KEEP_ALIVE.
static int fx_keep_secs(void)
{
	const char *v = getenv("KARAPACE_KEEP_ALIVE");
	if (v == NULL || *v == 0)
		return FX_KEEP_DEFAULT;
	char *e;
	errno = 0;
	long n = strtol(v, &e, 10);
	if (errno != 0 || *e != 0 || n < 0)
		return FX_KEEP_DEFAULT;
	return n > FX_KEEP_MAX ? FX_KEEP_MAX : (int)n;
}

// fx_ident checksums the identity (device, inode) of each path, 0 0 for a missing one,
// as 16 hex digits.
static void fx_ident(char **paths, char out[17])
{
	unsigned long long sum = 0xcbf29ce484222325ULL;
	for (char **p = paths; p && *p; p++) {
		struct stat sb;
		char rec[96];
		int n;
		if (stat(*p, &sb) == 0)
			n = snprintf(rec, sizeof(rec), "%llu:%llu;", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
		else
			n = snprintf(rec, sizeof(rec), "-;");
		for (int i = 0; i < n; i++) {
			sum ^= (unsigned char)rec[i];
			sum *= 0x100000001b3ULL;
		}
	}
	snprintf(out, 17, "%016llx", sum);
}

static double fx_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// fx_record_is reports whether dirfd's keeper record begins with prefix.
static int fx_record_is(int dirfd, const char *prefix)
{
	int fd = openat(dirfd, "keeper", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strncmp(buf, prefix, strlen(prefix)) == 0;
}

// The command line the binary was started with (the constructor's), which a keeper
// overwrites with its title.
static int fx_argc;
static char **fx_argv;

// fx_title makes ps show the keeper for what it is ("karapace keeper <env short id>")
// instead of the command line of the session that built the root: it writes over the
// argument strings, which lie end to end, and names the thread.
static void fx_title(const char *envdir)
{
	(void)prctl(PR_SET_NAME, "karapace-keep", 0, 0, 0);
	if (fx_argc < 1 || fx_argv == NULL || fx_argv[0] == NULL)
		return;
	char *start = fx_argv[0], *end = fx_argv[0] + strlen(fx_argv[0]);
	for (int i = 1; i < fx_argc && fx_argv[i] != NULL && fx_argv[i] == end + 1; i++)
		end = fx_argv[i] + strlen(fx_argv[i]);
	const char *id = strrchr(envdir, '/');
	id = id ? id + 1 : envdir;
	// [start, end] holds the strings and the NUL of the last one.
	size_t room = (size_t)(end - start);
	memset(start, 0, room);
	snprintf(start, room + 1, "karapace keeper %.12s", id);
}

// fx_keeper is the keeper's life (keeper_hook): fd pfd is the holder's pipe, fd dfd the
// environment's directory. It never returns.
__attribute__((noreturn)) static void fx_keeper(int pfd, int dfd)
{
	// Out of the session's process group and terminal: ^C and hang-ups are the
	// session's, not the keeper's.
	(void)setsid();
	fx_title(keep_envdir);
	unsigned long long start = 0;
	if (read_full(pfd, &start, sizeof(start)) < 0 || start == 0)
		_exit(0);
	for (;;) {
		char c;
		ssize_t r = read(pfd, &c, 1);
		if (r == 1 && c == 'K')
			break;
		if (r == 0 || (r < 0 && errno != EINTR))
			_exit(0); // the session ended before its root was complete
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(0);
	pid_t self = getpid();
	char prefix[64], line[256], tmp[64];
	snprintf(prefix, sizeof(prefix), "%d %llu ", (int)self, start);
	snprintf(line, sizeof(line), "%s%s\n", prefix, keep_line);
	snprintf(tmp, sizeof(tmp), ".keeper.%d", (int)self);
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(0);
	int ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line);
	close(fd);
	if (!ok || renameat(dfd, tmp, dfd, "keeper") < 0) {
		unlinkat(dfd, tmp, 0);
		_exit(0);
	}
	int rec = openat(dfd, "keeper", O_RDONLY | O_CLOEXEC);
	if (rec < 0)
		_exit(0);
	int first = 1; // the session that built the root is still running
	double last = fx_now();
	for (;;) {
		struct pollfd pf[2] = {{first ? pfd : -1, POLLIN, 0}, {sfd, POLLIN, 0}};
		int pr = poll(pf, 2, 1000);
		if (pr < 0 && errno != EINTR)
			break;
		if (first && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			char c;
			ssize_t r = read(pfd, &c, 1);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				first = 0;
				close(pfd);
				last = fx_now();
			}
		}
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGTERM)
					break;
				last = fx_now();
			}
		}
		struct stat sb;
		if (fstat(dfd, &sb) < 0 || sb.st_nlink == 0)
			break; // the environment was deleted
		if (!fx_record_is(dfd, prefix))
			_exit(0); // replaced by another keeper, or released
		if (first)
			continue;
		if (flock(rec, LOCK_EX | LOCK_NB) < 0) {
			last = fx_now(); // a joined session is running
			continue;
		}
		if (fx_now() - last >= (double)keep_secs)
			break; // idle long enough; the lock is held until the record is gone
		flock(rec, LOCK_UN);
	}
	if (fx_record_is(dfd, prefix))
		unlinkat(dfd, "keeper", 0);
	_exit(0);
}

// fx_holder_start is holder_start_time: the process start time, read by stage 0.
static int fx_holder_start(pid_t pid, unsigned long long *start) { return fx_start_time(pid, start); }


// fx_relay_mask sets the signal mask to old plus the signals the relay reads (mask), in
// one call: unblocking SIGCHLD in between would lose a PID 1 that already exited.
static void fx_relay_mask(const sigset_t *old, const sigset_t *mask)
{
	sigset_t m = *old;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(mask, sig) == 1)
			sigaddset(&m, sig);
	sigprocmask(SIG_SETMASK, &m, NULL);
}

// fx_join runs the session in the environment's keeper when there is one for this very
// plan (token) and these very directories (ident). It returns 0 when there is none,
// having changed nothing; -1 when it failed half-way and undid what it did (the caller
// falls back); otherwise this process has joined the keeper's namespaces and is stage 0
// in direct mode: it returns the session's PID 1, with the socket in *sockp, the record
// (locked shared while the session runs) in *recp and the keeper's pidfd in *kpidp.
static pid_t fx_join(struct fx_state *st, const char *envdir, const char *token, const char *ident, struct fx_buf *b,
		     int netns, const char *sessionsdir, unsigned long long start, int *sockp, int *recp, int *kpidp)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/keeper", envdir) >= (int)sizeof(path))
		return 0;
	// Descriptors kept above 3 and 4, which fx_direct takes over.
	int rec = open(path, O_RDONLY | O_CLOEXEC);
	if (rec < 0)
		return 0;
	int hi = fcntl(rec, F_DUPFD_CLOEXEC, 10);
	close(rec);
	if (hi < 0)
		return 0;
	rec = hi;
	char buf[256], ktoken[17], kident[17];
	int kpid = 0;
	unsigned long long kstart = 0;
	// The keeper holds the lock exclusively for a moment once a second, to see whether
	// a session is joined: wait that out (a keeper that then decides to leave removes
	// its record first, and the check of its pid below finds it gone).
	ssize_t n = -1;
	int locked = -1;
	for (int i = 0; i < 50 && (locked = flock(rec, LOCK_SH | LOCK_NB)) < 0 && errno == EWOULDBLOCK; i++)
		usleep(200);
	if (locked == 0)
		n = read(rec, buf, sizeof(buf) - 1);
	if (n > 0)
		buf[n] = 0;
	if (n <= 0 || sscanf(buf, "%d %llu %16s %16s", &kpid, &kstart, ktoken, kident) != 4 || kpid <= 0 ||
	    strcmp(ktoken, token) != 0 || strcmp(kident, ident) != 0) {
		close(rec);
		return 0;
	}
	int kpidfd = (int)syscall(SYS_pidfd_open, kpid, 0);
	if (kpidfd >= 0 && kpidfd < 10) {
		hi = fcntl(kpidfd, F_DUPFD_CLOEXEC, 10);
		close(kpidfd);
		kpidfd = hi;
	}
	// A keeper killed by a signal leaves its record, and a zombie until its new parent
	// reaps it: neither can be joined, and a session of its own replaces the record.
	unsigned long long now = 0;
	char state = 0;
	if (kpidfd < 0 || fx_proc_stat(kpid, &state, &now) < 0 || now != kstart || state == 'Z') {
		if (kpidfd >= 0)
			close(kpidfd);
		close(rec);
		return 0;
	}
	int sock = fx_direct(st, sessionsdir, start);
	if (sock < 0) {
		close(kpidfd);
		close(rec);
		return 0;
	}
	// The guard of the session's PID 1 reads the host's /proc (see guard_procfd).
	guard_procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (netns ? CLONE_NEWNET : 0);
	if (setns(kpidfd, flags) < 0) {
		// The keeper left in between: nothing joined, start over on the Go path.
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (guard_procfd >= 0)
			close(guard_procfd);
		guard_procfd = -1;
		close(sock);
		close(SYNC_FD);
		close(kpidfd);
		close(rec);
		fx_fallback(st, "the keeper left");
		return -1;
	}
	// Past this point this process is in the environment's namespaces: failures are
	// errors, never a fall back into the Go runtime.
	fx_required = 0;
	fx_direct_state = st;
	fail_hook_pid = getpid();
	fail_hook = fx_direct_fail;
	(void)syscall(SYS_pidfd_send_signal, kpidfd, SIGUSR1, NULL, 0);
	read_plan(b->p, (uint32_t)b->len);
	if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0)
		fail("namespaces", errno, "unshare(CLONE_NEWNS|CLONE_NEWPID)");
	pid_t child = fork();
	if (child < 0)
		fail("namespaces", errno, "fork the namespace init");
	if (child == 0)
		pid1_join(&all);
	fail_hook = NULL;
	close(SYNC_FD); // the PID 1 keeps its copy
	if (guard_procfd >= 0)
		close(guard_procfd);
	guard_procfd = -1;
	sigset_t relay;
	sigemptyset(&relay);
	sigaddset(&relay, SIGINT);
	sigaddset(&relay, SIGTERM);
	sigaddset(&relay, SIGCHLD);
	fx_relay_mask(&old, &relay);
	*sockp = sock;
	*recp = rec;
	*kpidp = kpidfd;
	return child;
}

// fx_try runs `exec ref -- cmd...` (ncmd arguments) on the store named by store_flag
// (or the environment), or returns to let the Go path run it.
static int fx_try(const char *store_flag, const char *ref, int ncmd, char **cmd, char **envp)
{
	struct fx_state st = {.lockfd = -1, .slotfd = -1, .claimsfd = -1, .sessionsfd = -1};
	char root[PATH_MAX], path[PATH_MAX], id[65];
	if (fx_store_root(store_flag, root, sizeof(root)) < 0)
		return fx_fallback(&st, "store root");
	size_t rl = strlen(ref);
	if (rl == 64 && fx_is_hex(ref, 64)) {
		memcpy(id, ref, 65);
	} else {
		if (!fx_valid_ref(ref))
			return fx_fallback(&st, "reference");
		char *b;
		size_t n;
		if (snprintf(path, sizeof(path), "%s/env/.refs/%s", root, ref) >= (int)sizeof(path) ||
		    fx_read_file(path, &b, &n, 128) < 0)
			return fx_fallback(&st, "reference not seen before");
		if (n < 64 || !fx_is_hex(b, 64) || (n > 64 && b[64] != '\n'))
			return fx_fallback(&st, "reference file");
		memcpy(id, b, 64);
		id[64] = 0;
		free(b);
	}
	char *raw;
	size_t rawlen;
	if (snprintf(path, sizeof(path), "%s/env/%s/fastexec", root, id) >= (int)sizeof(path) ||
	    fx_read_file(path, &raw, &rawlen, FX_MAX_PLAN) < 0)
		return fx_fallback(&st, "no plan");
	// The trailer: FNV-1a 64 of everything before it, as 16 hex digits and a NUL.
	if (rawlen < 17 || raw[rawlen - 1] != 0)
		return fx_fallback(&st, "plan checksum");
	unsigned long long sum = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < rawlen - 17; i++) {
		sum ^= (unsigned char)raw[i];
		sum *= 0x100000001b3ULL;
	}
	char want_sum[17];
	snprintf(want_sum, sizeof(want_sum), "%016llx", sum);
	if (memcmp(want_sum, raw + rawlen - 17, 16) != 0)
		return fx_fallback(&st, "plan checksum");
	rawlen -= 17;
	struct fx_reader r = {.cur = raw, .end = raw + rawlen};
	if (strcmp(fx_str(&r), FX_MAGIC) != 0 || r.bad)
		return fx_fallback(&st, "plan format");
	unsigned long long uid = fx_num(&r), gid = fx_num(&r);
	if (r.bad || uid != getuid() || gid != getgid())
		return fx_fallback(&st, "another user");
	char *metapath = fx_str(&r);
	size_t metalen;
	char *meta = fx_blob(&r, &metalen);
	char *name = fx_str(&r), *lockfile = fx_str(&r), *waldir = fx_str(&r);
	char *claimsdir = fx_str(&r), *sessionsdir = fx_str(&r), *workdir = fx_str(&r);
	uint32_t want = (uint32_t)fx_num(&r);
	int rootmaps = (int)fx_num(&r);
	char *newgidmap = fx_str(&r), *newuidmap = fx_str(&r);
	char **gidmap = fx_list(&r), **uidmap = fx_list(&r);
	if (r.bad)
		return fx_fallback(&st, "plan format");

	// The facts the plan was computed from.
	unsigned long long n = fx_num(&r);
	for (unsigned long long i = 0; i < n && !r.bad; i++) {
		char *k = fx_str(&r);
		int present = (int)fx_num(&r);
		char *v = fx_str(&r);
		char *now = getenv(k);
		if ((now != NULL) != present || (now && strcmp(now, v) != 0))
			return fx_fallback(&st, "host variables changed");
	}
	n = fx_num(&r);
	for (unsigned long long i = 0; i < n && !r.bad; i++) {
		char *p = fx_str(&r);
		int kind = (int)fx_num(&r);
		if (!r.bad && fx_kind(p) != kind)
			return fx_fallback(&st, "host files changed");
	}
	n = fx_num(&r);
	for (unsigned long long i = 0; i < n && !r.bad; i++) {
		char *p = fx_str(&r);
		int ok = (int)fx_num(&r);
		char *res = fx_str(&r);
		char real[PATH_MAX];
		char *got = realpath(p, real);
		if ((got != NULL) != ok || (got && strcmp(got, res) != 0))
			return fx_fallback(&st, "host symlinks changed");
	}
	n = fx_num(&r);
	for (unsigned long long i = 0; i < n && !r.bad; i++) {
		char *p = fx_str(&r);
		int present = (int)fx_num(&r);
		unsigned long long ino = fx_num(&r), size = fx_num(&r), sec = fx_num(&r), nsec = fx_num(&r);
		struct stat sb;
		int ok = stat(p, &sb) == 0;
		if (r.bad)
			break;
		if (ok != present || (ok && ((unsigned long long)sb.st_ino != ino || (unsigned long long)sb.st_size != size ||
					     (unsigned long long)sb.st_mtim.tv_sec != sec || (unsigned long long)sb.st_mtim.tv_nsec != nsec)))
			return fx_fallback(&st, "id map files, the store version or the binary changed");
	}
	char *cwd = fx_str(&r);
	if (!r.bad && cwd[0]) {
		char here[PATH_MAX];
		if (getcwd(here, sizeof(here)) == NULL || strcmp(here, cwd) != 0)
			return fx_fallback(&st, "working directory changed");
	}
	char **allow = fx_list(&r), **deny = fx_list(&r), **fixed = fx_list(&r);
	size_t headlen, mountslen;
	char *head = fx_blob(&r, &headlen);
	char *ovlprefix = fx_str(&r);
	int needwork = (int)fx_num(&r);
	char *mounts = fx_blob(&r, &mountslen);
	char *dir = fx_str(&r);
	char **idpaths = fx_list(&r);
	if (r.bad || r.cur != r.end)
		return fx_fallback(&st, "plan format");

	// The store: shared lock, nothing to recover, the record unchanged.
	st.lockfd = open(lockfile, O_RDWR | O_CLOEXEC);
	if (st.lockfd < 0)
		return fx_fallback(&st, "store lock");
	if (flock(st.lockfd, LOCK_SH | LOCK_NB) < 0)
		return fx_fallback(&st, "store lock busy");
	if (!fx_dir_empty(waldir))
		return fx_fallback(&st, "store has operations to recover");
	char *cur;
	size_t curlen;
	if (fx_read_file(metapath, &cur, &curlen, FX_MAX_PLAN) < 0)
		return fx_fallback(&st, "environment record");
	if (curlen != metalen || memcmp(cur, meta, metalen) != 0)
		return fx_fallback(&st, "environment changed since the plan");
	free(cur);
	if (!(strcmp(ref, id) == 0 || (rl == 12 && strncmp(ref, id, 12) == 0) || (name[0] && strcmp(ref, name) == 0)))
		return fx_fallback(&st, "reference does not name the environment");

	// The session claim (see core/claims.go), under the lock.
	pid_t self = getpid();
	unsigned long long start;
	if (fx_start_time(self, &start) < 0)
		return fx_fallback(&st, "own start time");
	if (mkdir(claimsdir, 0755) < 0 && errno != EEXIST)
		return fx_fallback(&st, "claims directory");
	char tmp[PATH_MAX], line[64];
	snprintf(tmp, sizeof(tmp), "%s/.%d.1.tmp", claimsdir, (int)self);
	snprintf(st.claim, sizeof(st.claim), "%s/%d.1", claimsdir, (int)self);
	snprintf(line, sizeof(line), "%d %llu", (int)self, start);
	int cfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (cfd < 0) {
		st.claim[0] = 0;
		return fx_fallback(&st, "session claim");
	}
	ssize_t w = write(cfd, line, strlen(line));
	close(cfd);
	if (w != (ssize_t)strlen(line) || rename(tmp, st.claim) < 0) {
		unlink(tmp);
		st.claim[0] = 0;
		return fx_fallback(&st, "session claim");
	}
	close(st.lockfd);
	st.lockfd = -1;

	// The environment: the host's allow-listed variables, then the plan's own.
	int nenv = 0, cap = 16;
	for (char **e = envp; e && *e; e++)
		cap++;
	for (char **e = fixed; e && *e; e++)
		cap++;
	char **env = calloc((size_t)cap, sizeof(char *));
	if (env == NULL)
		return fx_fallback(&st, "out of memory");
	for (char **e = envp; e && *e; e++) {
		size_t kl = strcspn(*e, "=");
		if ((*e)[kl] != '=' || !fx_valid_key(*e, kl) || !fx_match_any(allow, *e, kl, 0) || fx_match_any(deny, *e, kl, 1))
			continue;
		int dup = 0;
		for (int j = 0; j < nenv; j++)
			if (strncmp(env[j], *e, kl + 1) == 0) {
				env[j] = *e; // the last one wins, as in HostFromOS
				dup = 1;
			}
		if (!dup)
			env[nenv++] = *e;
	}
	for (char **e = fixed; e && *e; e++)
		env[nenv++] = *e;
	qsort(env, (size_t)nenv, sizeof(char *), fx_envcmp);

	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	int direct = 0, sock = -1, joined = 0, krec = -1, kpidfd = -1;
	pid_t s0 = -1;

	// The environment's keeper may hold its root already: join it (fx_join).
	int keep = fx_keep_secs();
	char envdir[PATH_MAX], ident[17] = "";
	if (snprintf(envdir, sizeof(envdir), "%s/env/%s", root, id) >= (int)sizeof(envdir))
		keep = 0;
	if (keep > 0) {
		fx_ident(idpaths, ident); // stats of every bind source: only when keepers are on
		struct fx_reader hr = {.cur = head, .end = head + headlen};
		(void)fx_num(&hr); // tty
		int netns = (int)fx_num(&hr);
		// A joined session mounts no root: no overlay options, no merged directory.
		struct fx_buf jb = {0};
		fx_launcher_plan(&jb, head, headlen, "", "", mounts, mountslen, env, nenv, cmd, ncmd, dir);
		if (!hr.bad && !jb.bad && jb.len <= MAX_PLAN) {
			pid_t j = fx_join(&st, envdir, want_sum, ident, &jb, netns, sessionsdir, start, &sock, &krec, &kpidfd);
			if (j < 0)
				return 0;
			if (j > 0) {
				s0 = j;
				direct = joined = 1;
			}
		}
		free(jb.p);
	}
	if (!joined) {
		// A session slot (see acquireSlot).
		if (mkdir(workdir, 0700) < 0 && errno != EEXIST)
			return fx_fallback(&st, "work directory");
		char slot[PATH_MAX - 32];
		if (strlen(workdir) > sizeof(slot) - 16)
			return fx_fallback(&st, "work path too long");
		for (int i = 0; i < 256 && st.slotfd < 0; i++) {
			snprintf(slot, sizeof(slot), "%s/s%d", workdir, i);
			snprintf(path, sizeof(path), "%s.lock", slot);
			int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			if (fd < 0)
				return fx_fallback(&st, "session slot");
			if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
				close(fd);
				if (errno == EWOULDBLOCK)
					continue;
				return fx_fallback(&st, "session slot lock");
			}
			st.slotfd = fd;
		}
		if (st.slotfd < 0)
			return fx_fallback(&st, "no free session slot");
		char work[PATH_MAX], merged[PATH_MAX];
		snprintf(work, sizeof(work), "%s/work", slot);
		snprintf(merged, sizeof(merged), "%s/merged", slot);
		if ((mkdir(slot, 0700) < 0 && errno != EEXIST) || (mkdir(work, 0700) < 0 && errno != EEXIST) ||
		    (mkdir(merged, 0700) < 0 && errno != EEXIST))
			return fx_fallback(&st, "session slot directories");

		// The launcher's plan, as fastexec_linux.go's flatPlan.encode would write it.
		struct fx_buf b = {0};
		char ovl[8192];
		if (needwork)
			snprintf(ovl, sizeof(ovl), "%s,workdir=%s", ovlprefix, work);
		else
			snprintf(ovl, sizeof(ovl), "%s", ovlprefix);
		if (strpbrk(work, ",:\\") != NULL)
			return fx_fallback(&st, "work path");
		fx_launcher_plan(&b, head, headlen, ovl, merged, mounts, mountslen, env, nenv, cmd, ncmd, dir);
		if (b.bad || b.len > MAX_PLAN)
			return fx_fallback(&st, "plan too large");

		// This session's root may be kept for the next ones (fx_keeper).
		// (Above fds 3 and 4, which stage 0's socket and slot lock take over.)
		int kd = keep > 0 ? open(envdir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		if (kd >= 0) {
			keep_dirfd = fcntl(kd, F_DUPFD_CLOEXEC, 10);
			close(kd);
		}
		if (keep_dirfd >= 0) {
			keep_secs = keep;
			snprintf(keep_line, sizeof(keep_line), "%s %s", want_sum, ident);
			snprintf(keep_envdir, sizeof(keep_envdir), "%s", envdir);
			keeper_hook = fx_keeper;
			holder_start_time = fx_holder_start;
		}
		if (!(want & WANT_PARENT) && (sock = fx_direct(&st, sessionsdir, start)) >= 0) {
			// Direct mode: this process becomes stage 0; s0 is then the PID 1, which
			// reports its status and its errors as stage 0 would.
			direct = 1;
			fx_required = 0;
			fx_direct_state = &st;
			fail_hook_pid = getpid();
			fail_hook = fx_direct_fail;
			sigprocmask(SIG_BLOCK, &mask, &old);
			s0 = stage0_setup(want, b.p, (uint32_t)b.len);
			fail_hook = NULL;
			close(SYNC_FD); // the PID 1 keeps its copy
			// stage0_setup blocked every signal: keep only what the relay below reads.
			fx_relay_mask(&old, &mask);
		}
		// Start stage 0: a fork of this very process, still without the Go runtime.
		int sp[2] = {-1, -1};
		if (!direct && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			return fx_fallback(&st, "sync socket");
		if (!direct)
			sigprocmask(SIG_BLOCK, &mask, &old);
		pid_t parent = getpid();
		if (!direct)
			s0 = fork();
		if (s0 < 0) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			close(sp[0]);
			close(sp[1]);
			return fx_fallback(&st, "fork");
		}
		if (s0 == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
				_exit(125);
			// Move the socket to fd 3 and the slot lock to fd 4 through copies above both,
			// closing the originals first: any of them may itself be 3 or 4.
			int a = fcntl(sp[1], F_DUPFD_CLOEXEC, 10);
			int c = fcntl(st.slotfd, F_DUPFD_CLOEXEC, 10);
			if (a < 0 || c < 0)
				_exit(125);
			close(sp[0]);
			close(sp[1]);
			close(st.slotfd);
			if (dup2(a, SYNC_FD) < 0 || dup2(c, SLOT_FD) < 0)
				_exit(125);
			close(a);
			close(c);
			stage0(want, b.p, (uint32_t)b.len);
		}
		if (!direct) {
			close(sp[1]);
			sock = sp[0];
		}
	}
	// Past this point the session has started: failures are errors, not fall backs.
	fx_required = 0;

	// Stage 0 has the plan already (it is a fork of this process).
	if (!joined && (want & WANT_PARENT)) {
		struct kp_msg m;
		if (read_full(sock, &m, sizeof(m)) < 0) {
			kill(s0, SIGKILL);
			waitpid(s0, NULL, 0);
			fx_exit_error(&st, "setup", "namespace helper did not start");
		}
		if (m.type == MSG_ERROR) {
			waitpid(s0, NULL, 0);
			m.stage[sizeof(m.stage) - 1] = 0;
			m.text[sizeof(m.text) - 1] = 0;
			fx_exit_error(&st, m.stage, m.text);
		}
		if (fx_write_maps(s0, rootmaps, newgidmap, newuidmap, gidmap, uidmap) < 0) {
			kill(s0, SIGKILL);
			waitpid(s0, NULL, 0);
			fx_exit_error(&st, "setup", "id maps: writing the user namespace's maps failed");
		}
		uint32_t go = 1;
		if (write(sock, &go, sizeof(go)) != (ssize_t)sizeof(go)) {
			kill(s0, SIGKILL);
			waitpid(s0, NULL, 0);
			fx_exit_error(&st, "setup", "release namespace helper");
		}
	}
	// The backend's session record (see Backend.session): stop signals stage 0 (in
	// direct mode, fx_direct recorded this process).
	unsigned long long s0start;
	if (!direct && fx_start_time(s0, &s0start) == 0 && (mkdir(sessionsdir, 0755) == 0 || errno == EEXIST)) {
		// Through a dot-named temp file and a rename, as replaceFile.
		char rtmp[PATH_MAX];
		snprintf(st.record, sizeof(st.record), "%s/%d", sessionsdir, (int)s0);
		snprintf(rtmp, sizeof(rtmp), "%s/.%d.tmp", sessionsdir, (int)s0);
		int fd = open(rtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int ok = fd >= 0 && dprintf(fd, "%d %llu\n", (int)s0, s0start) > 0;
		if (fd >= 0)
			close(fd);
		if (!ok || rename(rtmp, st.record) < 0) {
			unlink(rtmp);
			st.record[0] = 0;
		}
	}

	// Relay signals until stage 0 exits, collecting error reports.
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	int signals = 0, status = 0, exited = 0;
	struct timespec kill_at = {0};
	struct kp_msg m, err;
	size_t got = 0;
	int have_err = 0, sock_open = 1;
	while (!exited || sock_open) {
		struct pollfd pf[2] = {{sock_open ? sock : -1, POLLIN, 0}, {exited ? -1 : sfd, POLLIN, 0}};
		int timeout = -1;
		if (!exited && kill_at.tv_sec) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long ms = (kill_at.tv_sec - now.tv_sec) * 1000LL + (kill_at.tv_nsec - now.tv_nsec) / 1000000;
			if (ms <= 0) {
				kill(s0, SIGKILL);
				kill_at.tv_sec = 0;
				ms = -1;
			}
			timeout = (int)ms;
		}
		int pr = poll(pf, 2, timeout);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		if (sock_open && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t k = read(sock, (char *)&m + got, sizeof(m) - got);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				sock_open = 0;
				// PID 1 closes the socket as it exits: reap it now if it is gone (its
				// SIGCHLD is read below otherwise).
				int ws;
				if (!exited && waitpid(s0, &ws, WNOHANG) == s0) {
					status = ws;
					exited = 1;
				}
			} else {
				got += (size_t)k;
				if (got == sizeof(m)) {
					got = 0;
					if (m.type == MSG_ERROR && !have_err) {
						err = m;
						have_err = 1;
					}
				}
			}
		}
		if (!exited && sfd >= 0 && (pf[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD) {
				int ws;
				pid_t r2 = waitpid(s0, &ws, WNOHANG);
				if (r2 == s0) {
					status = ws;
					exited = 1;
				}
				continue;
			}
			// The sandbox is out of the user's session (leave_session): the terminal's
			// ^C reaches only this process, which passes it on and lets the command
			// decide (a SIGINT handler runs; karapace exits with its status), as the
			// Go path does (cli.inSession).
			if (si.ssi_signo == SIGINT) {
				kill(s0, SIGINT);
				continue;
			}
			signals++;
			if (signals >= 2) {
				// As the Go path: a second signal quits at once.
				dprintf(2, "\nkarapace: interrupted again, quitting now; the next karapace command rolls back what was left unfinished\n");
				kill(s0, SIGKILL);
				fx_undo(&st);
				_exit(130);
			}
			kill(s0, SIGTERM);
			clock_gettime(CLOCK_MONOTONIC, &kill_at);
			kill_at.tv_sec += 5;
		}
		if (sfd < 0 && !exited) {
			int ws;
			if (waitpid(s0, &ws, 0) == s0) {
				status = ws;
				exited = 1;
			}
		}
	}
	if (!exited) {
		while (waitpid(s0, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (kpidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, kpidfd, SIGUSR1, NULL, 0);
	if (krec >= 0)
		close(krec);
	fx_undo(&st);
	if (have_err) {
		err.stage[sizeof(err.stage) - 1] = 0;
		err.text[sizeof(err.text) - 1] = 0;
		dprintf(2, "error: runtime error: %s: %s\n", err.stage, err.text);
		// A command that could not be started exits as a shell's would: 127 when it
		// was not found, 126 when it could not be executed (the cli's exitCode).
		if (strcmp(err.stage, "exec") == 0 && exit_code(status) >= 126 && exit_code(status) <= 127)
			_exit(exit_code(status));
		_exit(1);
	}
	int code = exit_code(status);
	_exit(code);
}

// The command lines served: `karapace [--store DIR | --store=DIR] exec REF -- CMD...`
// (the form exported app launchers use); anything else is the Go path's.
__attribute__((constructor)) static void karapace_fastexec(int argc, char **argv, char **envp)
{
	if (argc < 5 || argv == NULL || argv[0] == NULL || argv[1] == NULL)
		return;
	const char *store = NULL;
	int i = 1;
	if (strcmp(argv[1], "--store") == 0) {
		store = argv[2];
		i = 3;
	} else if (strncmp(argv[1], "--store=", 8) == 0) {
		store = argv[1] + 8;
		i = 2;
	}
	if (argc < i + 4 || strcmp(argv[i], "exec") != 0 || strcmp(argv[i + 2], "--") != 0)
		return;
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "karapace") != 0)
		return;
	const char *mode = getenv("KARAPACE_FASTEXEC");
	if (mode && strcmp(mode, "off") == 0)
		return;
	fx_required = mode && strcmp(mode, "require") == 0;
	// The Go path logs when asked to; so does it alone.
	const char *log = getenv("KARAPACE_LOG");
	if (log && *log && !fx_required)
		return;
	const char *ref = argv[i + 1];
	if (ref[0] == '-' || ref[0] == 0 || (store && (store[0] == '-' || store[0] == 0)))
		return;
	fx_argc = argc;
	fx_argv = argv;
	(void)fx_try(store, ref, argc - i - 3, argv + i + 3, envp);
}
