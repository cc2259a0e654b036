package pkgmgr

import (
	"regexp"
	"strings"
)

// aptDialect drives apt-get, apt-cache and dpkg-query.
//
// Every apt-get call carries -o APT::Sandbox::User=root: inside a user namespace with
// one mapped id, apt cannot drop privileges to _apt and fails otherwise.
type aptDialect struct{}

var aptOpts = []string{"-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=3", "-q"}

func (aptDialect) env() []string {
	return []string{defaultPath, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true"}
}

func (aptDialect) refreshCmd() []string {
	return append(append([]string{"apt-get"}, aptOpts...), "update")
}

// checkRefresh: apt-get update exits 0 even when a repository could not be fetched; it
// only prints "W: Failed to fetch" or "E:" lines.
func (aptDialect) checkRefresh(r Result) error {
	var bad []string
	for _, l := range lines(r.Stderr) {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: Failed to fetch") || strings.HasPrefix(l, "W: Some index files failed") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		return &CommandError{Argv: aptDialect{}.refreshCmd(), ExitCode: r.ExitCode, Output: strings.Join(bad, "\n")}
	}
	return nil
}

// candidateCmd: `apt-cache policy` prints, per known name, the version apt-get install
// would pick ("Candidate:"), honouring pinning; unknown names print nothing.
func (aptDialect) candidateCmd(names []string) []string {
	return append([]string{"apt-cache", "policy"}, names...)
}

// parseCandidates reads apt-cache policy output:
//
//	curl:
//	  Installed: (none)
//	  Candidate: 7.88.1-10+deb12u15
//	  Version table:
//	     7.88.1-10+deb12u15 500
func (aptDialect) parseCandidates(names []string, r Result) ([]Package, error) {
	if r.ExitCode != 0 {
		return nil, commandError(aptDialect{}.candidateCmd(names), r)
	}
	candidates := map[string]string{}
	current := ""
	for _, l := range lines(r.Stdout) {
		if l[0] != ' ' && strings.HasSuffix(l, ":") {
			current = strings.TrimSuffix(l, ":")
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok && current != "" {
			candidates[current] = strings.TrimSpace(v)
		}
	}
	out := make([]Package, len(names))
	for i, n := range names {
		v, ok := candidates[n]
		if !ok {
			v, ok = candidates[strings.SplitN(n, ":", 2)[0]]
		}
		switch {
		case !ok:
			return nil, &PackageError{Manager: Apt, Name: n, Err: ErrNotFound, Detail: "apt-cache knows no package of that name"}
		case v == "(none)" || v == "":
			return nil, &PackageError{Manager: Apt, Name: n, Err: ErrNotFound, Detail: "no installation candidate: a virtual package or one without a version in the configured repositories; name a real package"}
		}
		out[i] = Package{Name: n, Version: v}
	}
	return out, nil
}

// installCmd installs name=version (or name); --allow-downgrades lets a lock hold a
// version older than one already in the image.
func (aptDialect) installCmd(pkgs []Package) []string {
	argv := append(append([]string{"apt-get"}, aptOpts...), "install", "-y", "--no-install-recommends", "--allow-downgrades")
	for _, p := range pkgs {
		if p.Version != "" {
			argv = append(argv, p.Name+"="+p.Version)
		} else {
			argv = append(argv, p.Name)
		}
	}
	return argv
}

var (
	aptVersionMissing = regexp.MustCompile(`^E: Version '([^']*)' for '([^']*)' was not found`)
	aptUnknown        = regexp.MustCompile(`^E: Unable to locate package (\S+)`)
	aptNoCandidate    = regexp.MustCompile(`^E: Package '([^']*)' has no installation candidate`)
)

func (aptDialect) installError(pkgs []Package, r Result) error {
	for _, l := range lines(r.Stderr) {
		if m := aptVersionMissing.FindStringSubmatch(l); m != nil {
			return &PackageError{Manager: Apt, Name: m[2], Version: m[1], Err: ErrVersionUnavailable,
				Detail: "the repositories no longer offer it; use a snapshot mirror (snapshot.debian.org) or re-resolve without --locked"}
		}
		if m := aptUnknown.FindStringSubmatch(l); m != nil {
			name, version, _ := strings.Cut(m[1], "=")
			for _, p := range pkgs {
				if p.Name == name && version == "" {
					version = p.Version
				}
			}
			return &PackageError{Manager: Apt, Name: name, Version: version, Err: ErrNotFound, Detail: strings.TrimPrefix(l, "E: ")}
		}
		if m := aptNoCandidate.FindStringSubmatch(l); m != nil {
			return &PackageError{Manager: Apt, Name: m[1], Err: ErrNotFound, Detail: "no installation candidate (a virtual package?)"}
		}
	}
	return commandError(aptDialect{}.installCmd(pkgs), r)
}

// cleanCmd: apt-get clean empties /var/cache/apt/archives (the downloaded .deb files)
// and the binary caches apt rebuilds itself; /var/lib/apt/lists stays.
func (aptDialect) cleanCmd() []string {
	return append(append([]string{"apt-get"}, aptOpts...), "clean")
}

// installedCmd asks dpkg for name, version and status; the format is one argument whose
// \t and \n dpkg-query expands itself.
func (aptDialect) installedCmd(names []string) []string {
	return append([]string{"dpkg-query", "-W", "-f", `${Package}\t${Version}\t${db:Status-Abbrev}\n`}, names...)
}

// parseInstalled keeps only packages whose status says installed ("ii", "hi", ...):
// dpkg-query also lists packages it merely knows of ("un" with no version). Its exit
// status is 1 when some name matched nothing, which is not an error here.
func (aptDialect) parseInstalled(r Result) map[string]string {
	out := map[string]string{}
	for _, l := range lines(r.Stdout) {
		f := strings.Split(l, "\t")
		if len(f) < 3 || f[1] == "" {
			continue
		}
		status := strings.TrimSpace(f[2])
		if len(status) < 2 || status[1] != 'i' {
			continue
		}
		name := f[0]
		if _, seen := out[name]; !seen {
			out[name] = f[1]
		}
		// dpkg-query prints the bare name for the native architecture; accept the
		// name:arch spelling a manifest may use as well.
	}
	return out
}
