package pkgmgr

import (
	"regexp"
	"strings"
)

// rpmDialect drives dnf (Fedora) or zypper (openSUSE); both read installed versions
// back with rpm. Versions are [epoch:]version-release, the epoch shown only when it is
// not zero, in both the candidate query and rpm -q, so they compare equal.
type rpmDialect struct {
	kind Kind
	arch string // preferred architecture, e.g. x86_64; noarch is always fine
}

func (d *rpmDialect) env() []string { return []string{defaultPath, "LC_ALL=C"} }

func (d *rpmDialect) refreshCmd() []string {
	if d.kind == Zypper {
		return []string{"zypper", "--non-interactive", "--gpg-auto-import-keys", "refresh"}
	}
	return []string{"dnf", "-y", "makecache"}
}

func (d *rpmDialect) checkRefresh(Result) error { return nil }

// candidateCmd: dnf repoquery with the newest version per name and arch; zypper info,
// which describes the candidate zypper install would pick.
func (d *rpmDialect) candidateCmd(names []string) []string {
	if d.kind == Zypper {
		return append([]string{"zypper", "--non-interactive", "--no-refresh", "info", "--type", "package"}, names...)
	}
	return append([]string{"dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", `%{name}\t%{evr}\t%{arch}\n`}, names...)
}

func (d *rpmDialect) parseCandidates(names []string, r Result) ([]Package, error) {
	if d.kind == Zypper {
		return d.parseZypperInfo(names, r)
	}
	if r.ExitCode != 0 {
		return nil, commandError(d.candidateCmd(names), r)
	}
	// name -> best (version, arch) seen: the preferred arch or noarch beats others.
	type cand struct{ version, arch string }
	best := map[string]cand{}
	for _, l := range lines(r.Stdout) {
		f := strings.Split(strings.TrimSpace(l), "\t")
		if len(f) != 3 {
			continue
		}
		c, seen := best[f[0]]
		if !seen || (!d.goodArch(c.arch) && d.goodArch(f[2])) {
			best[f[0]] = cand{f[1], f[2]}
		}
	}
	out := make([]Package, len(names))
	for i, n := range names {
		c, ok := best[n]
		if !ok {
			return nil, &PackageError{Manager: Dnf, Name: n, Err: ErrNotFound,
				Detail: "dnf repoquery found no package of that name (a capability or group must be named by its package)"}
		}
		out[i] = Package{Name: n, Version: c.version}
	}
	return out, nil
}

func (d *rpmDialect) goodArch(a string) bool { return a == d.arch || a == "noarch" }

// parseZypperInfo reads `zypper info` blocks:
//
//	Information for package curl:
//	-----------------------------
//	Repository     : openSUSE-Tumbleweed-Oss
//	Name           : curl
//	Version        : 8.11.1-1.1
//
// and "package 'x' not found." for unknown names.
func (d *rpmDialect) parseZypperInfo(names []string, r Result) ([]Package, error) {
	if r.ExitCode != 0 && r.ExitCode != 104 { // 104: ZYPPER_EXIT_INF_CAP_NOT_FOUND
		return nil, commandError(d.candidateCmd(names), r)
	}
	versions := map[string]string{}
	current := ""
	for _, l := range lines(r.Stdout) {
		key, val, ok := strings.Cut(l, ":")
		if !ok || l[0] == ' ' || l[0] == '\t' { // indented: a description's text
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "Name":
			current = val
		case "Version":
			if current != "" {
				if _, seen := versions[current]; !seen {
					versions[current] = val
				}
			}
		}
		if strings.HasPrefix(l, "Information for ") {
			current = ""
		}
	}
	out := make([]Package, len(names))
	for i, n := range names {
		v, ok := versions[n]
		if !ok || v == "" {
			return nil, &PackageError{Manager: Zypper, Name: n, Err: ErrNotFound, Detail: "zypper info found no package of that name"}
		}
		out[i] = Package{Name: n, Version: v}
	}
	return out, nil
}

// installCmd: dnf takes NEVRA-style name-[epoch:]version-release; zypper takes the
// capability name=version, and --oldpackage lets it install a locked version older
// than one in the image.
// cleanCmd: zypper clean without options deletes only the downloaded packages; dnf
// clean packages the same (dnf keeps none unless keepcache is set).
func (d *rpmDialect) cleanCmd() []string {
	if d.kind == Zypper {
		return []string{"zypper", "--non-interactive", "clean"}
	}
	return []string{"dnf", "-y", "clean", "packages"}
}

func (d *rpmDialect) installCmd(pkgs []Package) []string {
	var argv []string
	sep := "-"
	if d.kind == Zypper {
		argv = []string{"zypper", "--non-interactive", "install", "--no-recommends", "--oldpackage"}
		sep = "="
	} else {
		argv = []string{"dnf", "-y", "install", "--setopt=install_weak_deps=False"}
	}
	for _, p := range pkgs {
		if p.Version != "" {
			argv = append(argv, p.Name+sep+p.Version)
		} else {
			argv = append(argv, p.Name)
		}
	}
	return argv
}

var (
	dnfNoMatch       = regexp.MustCompile(`No match for argument: (\S+)`)
	zypperNoProvider = regexp.MustCompile(`No provider of '([^']+)' found`)
	zypperNotFound   = regexp.MustCompile(`[Pp]ackage '([^']+)' not found`)
)

func (d *rpmDialect) installError(pkgs []Package, r Result) error {
	text := string(r.Stdout) + "\n" + string(r.Stderr)
	var arg string
	if m := dnfNoMatch.FindStringSubmatch(text); m != nil && d.kind == Dnf {
		arg = m[1]
	} else if m := zypperNoProvider.FindStringSubmatch(text); m != nil && d.kind == Zypper {
		arg = m[1]
	} else if m := zypperNotFound.FindStringSubmatch(text); m != nil && d.kind == Zypper {
		arg = m[1]
	}
	if arg != "" {
		for _, p := range pkgs {
			sep := "-"
			if d.kind == Zypper {
				sep = "="
			}
			switch arg {
			case p.Name + sep + p.Version:
				if p.Version != "" {
					return &PackageError{Manager: d.kind, Name: p.Name, Version: p.Version, Err: ErrVersionUnavailable,
						Detail: "the repositories no longer offer it; re-resolve without --locked"}
				}
			case p.Name:
				return &PackageError{Manager: d.kind, Name: p.Name, Err: ErrNotFound, Detail: "no package of that name"}
			}
		}
	}
	return commandError(d.installCmd(pkgs), r)
}

// installedCmd: rpm prints "package x is not installed" (and exits 1) for missing
// names, which has no tab and is skipped by the parser.
func (d *rpmDialect) installedCmd(names []string) []string {
	return append([]string{"rpm", "-q", "--qf", `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n`}, names...)
}

func (d *rpmDialect) parseInstalled(r Result) map[string]string {
	out := map[string]string{}
	for _, l := range lines(r.Stdout) {
		name, version, ok := strings.Cut(strings.TrimSpace(l), "\t")
		if !ok || name == "" || version == "" || strings.Contains(version, "\t") {
			continue
		}
		if _, seen := out[name]; !seen {
			out[name] = version
		}
	}
	return out
}
