package sandbox

// hostEnvKeys are the host variables Compute reads besides the allow-listed ones that
// pass into the environment (HostFromOS reads HOME and USER; host integration reads the
// rest).
var hostEnvKeys = []string{"HOME", "USER", "DISPLAY", "XDG_RUNTIME_DIR", "WAYLAND_DISPLAY", "XAUTHORITY"}

// HostEnvKeys returns the host variables a session's plan depends on, other than the
// allow-listed ones it passes on: with these, Host.UID/GID, the answers of Host.FS and
// Host.Cwd (a session starts in it when the sandbox sees it, and relative mounts may
// resolve against it) unchanged, Compute gives the same plan for the same Inputs.
func HostEnvKeys() []string { return append([]string(nil), hostEnvKeys...) }

// KindFact is one answer of FS.Kind.
type KindFact struct {
	Path string
	Kind Kind
}

// LinkFact is one answer of FS.EvalSymlinks.
type LinkFact struct {
	Path     string
	Resolved string // "" when it failed
	OK       bool
}

// RecordingFS answers as FS does and remembers every question and answer, so that a
// caller can check later whether the host still answers the same (the native exec fast
// path does, before it reuses a plan).
type RecordingFS struct {
	FS    FS
	Kinds []KindFact
	Links []LinkFact
}

// Kind implements FS.
func (r *RecordingFS) Kind(path string) Kind {
	k := r.FS.Kind(path)
	r.Kinds = append(r.Kinds, KindFact{Path: path, Kind: k})
	return k
}

// EvalSymlinks implements FS.
func (r *RecordingFS) EvalSymlinks(path string) (string, error) {
	p, err := r.FS.EvalSymlinks(path)
	r.Links = append(r.Links, LinkFact{Path: path, Resolved: p, OK: err == nil})
	return p, err
}
