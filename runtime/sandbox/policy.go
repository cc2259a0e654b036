package sandbox

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// DefaultPath is the PATH of every process in an environment. The host's PATH is not
// passed: its directories need not exist in the image.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// allowedEnv is the allow-list of host variables that pass into an interactive or exec
// session unchanged. A trailing "*" matches any suffix. HOME, USER, LOGNAME, PATH, SHELL,
// HOSTNAME and the host-integration variables (DISPLAY, WAYLAND_DISPLAY, XAUTHORITY,
// XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS) are set by the plan itself, with values
// that are true inside the environment.
var allowedEnv = []string{
	"TERM", "COLORTERM", "NO_COLOR",
	"LANG", "LANGUAGE", "LC_*", "TZ",
	"EDITOR", "VISUAL", "PAGER",
}

// deniedEnv never passes, even when a rule of allowedEnv matches it, whatever the case
// of the variable's name (see matchDenied). It holds the original's documented deny
// list plus common credential carriers.
var deniedEnv = []string{
	"SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "DOCKER_HOST",
	"AWS_*", "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "NPM_TOKEN",
	"*_TOKEN", "*_SECRET", "*_SECRET_*", "*PASSWORD*", "*_API_KEY", "KRB5CCNAME",
}

// deniedTargets are the trees a manifest mount may not cover: the kernel's
// filesystems that the plan itself mounts.
var deniedTargets = []string{"/proc", "/sys", "/dev"}

// CPU share bounds of the cgroup v1 cpu.shares scale.
const (
	MinCPUShares = 2
	MaxCPUShares = 262144
	// MaxMemoryMB bounds memory_limit_mb so that the byte count cannot overflow.
	MaxMemoryMB = 1 << 30
)

// matchPattern matches key against one pattern of the lists above: "*X*" holds X
// anywhere, "*X" ends in X, "X*" starts with X, anything else is the whole key. The
// comparison is byte for byte; matchAny and matchDenied choose the case rule.
func matchPattern(pattern, key string) bool {
	switch {
	case strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*") && len(pattern) > 1:
		return strings.Contains(key, pattern[1:len(pattern)-1])
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(key, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(key, pattern[:len(pattern)-1])
	default:
		return key == pattern
	}
}

// matchAny matches case-sensitively (the allow-list: LC_ALL passes, lc_all does not).
func matchAny(patterns []string, key string) bool {
	for _, p := range patterns {
		if matchPattern(p, key) {
			return true
		}
	}
	return false
}

// matchDenied matches case-insensitively in ASCII: key and pattern are both upper-cased
// (bytes 'a'..'z' become 'A'..'Z', every other byte stays as it is; no locale, no
// Unicode folding) and then compared by matchPattern. So LC_Password, my_token and
// Aws_Secret_Access_Key are denied like their upper-case forms. The C launcher mirrors
// this rule.
func matchDenied(patterns []string, key string) bool {
	k := asciiUpper(key)
	for _, p := range patterns {
		if matchPattern(asciiUpper(p), k) {
			return true
		}
	}
	return false
}

// asciiUpper upper-cases the ASCII letters of s and leaves every other byte alone
// (strings.ToUpper would also fold non-ASCII runes, such as U+017F to 'S').
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// AllowedEnv returns the allow-list patterns (for documentation and doctor output).
func AllowedEnv() []string { return append([]string(nil), allowedEnv...) }

// DeniedEnv returns the deny-list patterns.
func DeniedEnv() []string { return append([]string(nil), deniedEnv...) }

// EnvDenied reports whether the deny list covers key, in any mix of upper and lower
// case (see matchDenied).
func EnvDenied(key string) bool { return matchDenied(deniedEnv, key) }

// EnvAllowed reports whether a host variable passes the policy: on the allow-list, off
// the deny list, and a well-formed name.
func EnvAllowed(key string) bool {
	return validEnvKey(key) && matchAny(allowedEnv, key) && !EnvDenied(key)
}

// validEnvKey accepts POSIX names: a letter or '_' first, then letters, digits or '_'.
func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// FilterEnv returns the host variables that pass the policy, sorted by name. Values
// holding a NUL byte cannot be passed to execve and are dropped.
func FilterEnv(env map[string]string) map[string]string {
	out := make(map[string]string)
	for k, v := range env {
		if EnvAllowed(k) && !strings.ContainsRune(v, 0) {
			out[k] = v
		}
	}
	return out
}

// sortedEnv renders a variable map as KEY=VALUE lines sorted by key.
func sortedEnv(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// under reports whether path is root or lies below it, comparing whole path components
// (so /homeevil is not under /home). Both must be clean and absolute.
func under(path, root string) bool {
	if root == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == root || strings.HasPrefix(path, root+"/")
}

// MountRoots returns the host trees a manifest mount may come from: /home, /tmp and the
// user's home, each also in its symlink-resolved form (so /home -> /var/home on Fedora
// Atomic works, and a symlink cannot smuggle in anything else).
func MountRoots(h Host) []string {
	cands := []string{"/home", "/tmp"}
	if filepath.IsAbs(h.Home) && filepath.Clean(h.Home) != "/" {
		cands = append(cands, filepath.Clean(h.Home))
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && p != "/" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, c := range cands {
		add(c)
		if h.FS != nil {
			if r, err := resolveExisting(h.FS, c); err == nil {
				add(r)
			}
		}
	}
	return out
}

// ResolvedMount is a manifest mount after the policy accepted it.
type ResolvedMount struct {
	schema.Mount
	Source string // the host path, with ~, relative parts and symlinks resolved
	Kind   Kind   // what Source is (Missing when it does not exist yet)
}

// ResolveHostPath expands a manifest host path: "~" and "~/x" against the user's home,
// a relative path against manifestDir (the manifest file's directory; the current
// directory when empty), then cleans it and resolves its symlinks.
func ResolveHostPath(hostPath, manifestDir string, h Host) (string, error) {
	p := hostPath
	switch {
	case p == "~":
		p = h.Home
	case strings.HasPrefix(p, "~/"):
		p = filepath.Join(h.Home, p[2:])
	case strings.HasPrefix(p, "~"):
		// ~user forms name another user's home: not supported.
		return "", fmt.Errorf("host path %q: only ~ and ~/ are expanded", hostPath)
	}
	if !filepath.IsAbs(p) {
		base := manifestDir
		if base == "" {
			base = h.Cwd
		}
		if !filepath.IsAbs(base) {
			return "", fmt.Errorf("host path %q is relative and the manifest directory %q is not absolute", hostPath, base)
		}
		p = filepath.Join(base, p)
	}
	p = filepath.Clean(p)
	if h.FS == nil {
		return p, nil
	}
	r, err := resolveExisting(h.FS, p)
	if err != nil {
		return "", fmt.Errorf("host path %q: resolve symlinks: %w", hostPath, err)
	}
	return r, nil
}

// CheckContainerPath validates a mount destination: absolute, clean, no "..", not "/",
// and not over /proc, /sys or /dev.
func CheckContainerPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: container path %q must be absolute", runtime.ErrMountDenied, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%w: container path %q must not contain '..'", runtime.ErrMountDenied, p)
		}
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("%w: container path %q is not clean (want %q)", runtime.ErrMountDenied, p, filepath.Clean(p))
	}
	if p == "/" {
		return fmt.Errorf("%w: container path %q would replace the environment's root", runtime.ErrMountDenied, p)
	}
	if strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("%w: container path %q holds a control character", runtime.ErrMountDenied, p)
	}
	for _, d := range deniedTargets {
		if under(p, d) {
			return fmt.Errorf("%w: container path %q is inside %s, which the sandbox manages", runtime.ErrMountDenied, p, d)
		}
	}
	return nil
}

// CheckMount applies the mount policy to one manifest mount and returns it resolved.
// The host path must lie, after expansion and symlink resolution, at or below one of
// MountRoots (compared by path components); host device paths are refused with
// ErrDeviceDenied (devices come only from [hardware]).
func CheckMount(m schema.Mount, manifestDir string, h Host) (ResolvedMount, error) {
	if err := CheckContainerPath(m.ContainerPath); err != nil {
		return ResolvedMount{}, fmt.Errorf("mount '%s': %w", m.Label, err)
	}
	src, err := ResolveHostPath(m.HostPath, manifestDir, h)
	if err != nil {
		return ResolvedMount{}, fmt.Errorf("%w: mount '%s': %v", runtime.ErrMountDenied, m.Label, err)
	}
	if under(src, "/dev") {
		return ResolvedMount{}, fmt.Errorf("%w: mount '%s' (resolved: %s) exposes a host device; use [hardware] gpu or audio", runtime.ErrDeviceDenied, m.HostPath, src)
	}
	roots := MountRoots(h)
	ok := false
	for _, r := range roots {
		if under(src, r) {
			ok = true
			break
		}
	}
	if !ok {
		return ResolvedMount{}, fmt.Errorf("%w: mount '%s' (resolved: %s) is not under any allowed prefix: %s", runtime.ErrMountDenied, m.HostPath, src, quoteList(roots))
	}
	k := Missing
	if h.FS != nil {
		k = h.FS.Kind(src)
	}
	return ResolvedMount{Mount: m, Source: src, Kind: k}, nil
}

// CheckMounts applies CheckMount to every mount of a manifest, in order. The engine
// calls it at build time; Compute calls it again at every session, since the host may
// have changed (a symlink retargeted) in between.
func CheckMounts(mounts []schema.Mount, manifestDir string, h Host) ([]ResolvedMount, error) {
	out := make([]ResolvedMount, 0, len(mounts))
	for _, m := range mounts {
		r, err := CheckMount(m, manifestDir, h)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// quoteList prints paths as the original did (Rust debug form): ["/home", "/tmp"].
func quoteList(ps []string) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = fmt.Sprintf("%q", p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// CheckLimits validates the manifest's resource limits and converts them to a Limits.
func CheckLimits(n schema.Normalized) (Limits, error) {
	var l Limits
	if n.CPUShares != nil {
		s := *n.CPUShares
		if s < MinCPUShares || s > MaxCPUShares {
			return Limits{}, fmt.Errorf("%w: cpu_shares %d is out of range %d..%d", runtime.ErrPolicy, s, MinCPUShares, MaxCPUShares)
		}
		l.CPUShares = s
	}
	if n.MemoryLimitMB != nil {
		mb := *n.MemoryLimitMB
		if mb < 1 || mb > MaxMemoryMB {
			return Limits{}, fmt.Errorf("%w: memory_limit_mb %d is out of range 1..%d", runtime.ErrPolicy, mb, MaxMemoryMB)
		}
		l.MemoryBytes = mb << 20
	}
	return l, nil
}

// CheckManifest applies every policy rule that depends only on the manifest and the
// host: mounts and limits. The engine runs it before building (the original's build
// step 5), so a denied mount fails the build rather than the first session.
func CheckManifest(n schema.Normalized, manifestDir string, h Host) error {
	if _, err := CheckMounts(n.Mounts, manifestDir, h); err != nil {
		return err
	}
	_, err := CheckLimits(n)
	return err
}
