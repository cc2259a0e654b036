package pkgmgr

import (
	"regexp"
	"strings"
)

// pacmanDialect drives pacman (Arch Linux).
//
// Locking on Arch: the sync repositories hold only the newest build of each package,
// so the closest honest equivalent of "install this exact version" is asking pacman
// for the target "name=version": it installs it when the repository still carries that
// version and otherwise fails ("target not found"), which we report as
// ErrVersionUnavailable. To rebuild an old lock, point the image's mirrorlist at the
// Arch Linux Archive for the lock's date.
type pacmanDialect struct{}

func (pacmanDialect) env() []string { return []string{defaultPath, "LC_ALL=C"} }

// refreshCmd syncs the databases only (-Sy), as the manifest's packages are then
// installed against them; a full -Syu would also upgrade the base image.
func (pacmanDialect) refreshCmd() []string { return []string{"pacman", "-Sy", "--noconfirm"} }

func (pacmanDialect) checkRefresh(Result) error { return nil }

func (pacmanDialect) candidateCmd(names []string) []string {
	return append([]string{"pacman", "-Si"}, names...)
}

var pacmanNotFound = regexp.MustCompile(`error: package '([^']+)' was not found`)

// parseCandidates reads pacman -Si blocks ("Name : curl", "Version : 8.11.1-1", one
// block per repository carrying the name; the first, in pacman.conf order, wins).
// Unknown names give "error: package 'x' was not found" on stderr and exit status 1.
func (pacmanDialect) parseCandidates(names []string, r Result) ([]Package, error) {
	versions := map[string]string{}
	current := ""
	for _, l := range lines(r.Stdout) {
		key, val, ok := strings.Cut(l, ":")
		if !ok || l[0] == ' ' || l[0] == '\t' { // indented: a continued list
			continue
		}
		switch strings.TrimSpace(key) {
		case "Name":
			current = strings.TrimSpace(val)
		case "Version":
			if _, seen := versions[current]; current != "" && !seen {
				versions[current] = strings.TrimSpace(val)
			}
		}
	}
	if r.ExitCode != 0 && pacmanNotFound.Find(r.Stderr) == nil {
		return nil, commandError(pacmanDialect{}.candidateCmd(names), r)
	}
	out := make([]Package, len(names))
	for i, n := range names {
		v, ok := versions[n]
		if !ok || v == "" {
			return nil, &PackageError{Manager: Pacman, Name: n, Err: ErrNotFound, Detail: "pacman -Si found no package of that name (groups and provides must be named by a package)"}
		}
		out[i] = Package{Name: n, Version: v}
	}
	return out, nil
}

// cleanCmd empties pacman's package cache. pacman -Scc cannot: with --noconfirm it takes
// the default answer to "remove ALL files from cache?", which is no.
func (pacmanDialect) cleanCmd() []string {
	return []string{"/bin/sh", "-c", "rm -rf /var/cache/pacman/pkg/*"}
}

func (pacmanDialect) installCmd(pkgs []Package) []string {
	argv := []string{"pacman", "-S", "--noconfirm", "--needed"}
	for _, p := range pkgs {
		if p.Version != "" {
			argv = append(argv, p.Name+"="+p.Version)
		} else {
			argv = append(argv, p.Name)
		}
	}
	return argv
}

var pacmanTargetNotFound = regexp.MustCompile(`error: target not found: (\S+)`)

func (pacmanDialect) installError(pkgs []Package, r Result) error {
	if m := pacmanTargetNotFound.FindSubmatch(r.Stderr); m != nil {
		target := string(m[1])
		for _, p := range pkgs {
			if p.Version != "" && target == p.Name+"="+p.Version {
				return &PackageError{Manager: Pacman, Name: p.Name, Version: p.Version, Err: ErrVersionUnavailable,
					Detail: "Arch repositories keep only the newest version; use an Arch Linux Archive mirror for the lock's date or re-resolve without --locked"}
			}
			if target == p.Name {
				return &PackageError{Manager: Pacman, Name: p.Name, Err: ErrNotFound, Detail: "target not found"}
			}
		}
	}
	return commandError(pacmanDialect{}.installCmd(pkgs), r)
}

func (pacmanDialect) installedCmd(names []string) []string {
	return append([]string{"pacman", "-Q"}, names...)
}

// parseInstalled reads "name version" lines; missing names only produce
// "error: package 'x' was not found" on stderr.
func (pacmanDialect) parseInstalled(r Result) map[string]string {
	out := map[string]string{}
	for _, l := range lines(r.Stdout) {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		out[f[0]] = f[1]
	}
	return out
}
