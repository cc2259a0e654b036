package schema

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// LockVersion is the only lock file version this package reads and writes.
const LockVersion = 2

// MaxLockSize is the largest lock file accepted, in bytes (a lock of ten thousand
// packages is well under 1 MiB).
const MaxLockSize = 4 << 20

// LockFileName is the lock file's name, next to the manifest.
const LockFileName = "karapace.lock"

// Lock is a v2 lock file: the resolved state of an environment. Its identity (env_id) is
// a hash of the resolved fields only, so the same lock gives the same environment.
// Field order is the file's key order and the JSON key order: do not reorder.
type Lock struct {
	LockVersion      uint32            `json:"lock_version"`
	EnvID            EnvID             `json:"env_id"`
	ShortID          ShortID           `json:"short_id"`
	BaseImage        string            `json:"base_image"`
	BaseImageDigest  string            `json:"base_image_digest"`
	ResolvedPackages []ResolvedPackage `json:"resolved_packages"`
	ResolvedApps     []string          `json:"resolved_apps"`
	RuntimeBackend   string            `json:"runtime_backend"`
	HardwareGPU      bool              `json:"hardware_gpu"`
	HardwareAudio    bool              `json:"hardware_audio"`
	NetworkIsolation bool              `json:"network_isolation"`
	Mounts           []Mount           `json:"mounts"`
	CPUShares        *uint64           `json:"cpu_shares"`
	MemoryLimitMB    *uint64           `json:"memory_limit_mb"`
}

// NewLock builds the lock for a normalized manifest and its resolution (the original's
// from_resolved): packages sorted by name then version (not deduplicated), apps and
// mounts in normalized order, and env_id/short_id computed from the result.
func NewLock(n *Normalized, r Resolution) *Lock {
	pkgs := append([]ResolvedPackage{}, r.ResolvedPackages...)
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].Less(pkgs[j]) })
	l := &Lock{
		LockVersion:      LockVersion,
		BaseImage:        n.BaseImage,
		BaseImageDigest:  r.BaseImageDigest,
		ResolvedPackages: pkgs,
		ResolvedApps:     append([]string{}, n.GUIApps...),
		RuntimeBackend:   n.RuntimeBackend,
		HardwareGPU:      n.HardwareGPU,
		HardwareAudio:    n.HardwareAudio,
		NetworkIsolation: n.NetworkIsolation,
		Mounts:           append([]Mount{}, n.Mounts...),
		CPUShares:        copyUint(n.CPUShares),
		MemoryLimitMB:    copyUint(n.MemoryLimitMB),
	}
	l.EnvID = l.Identity()
	l.ShortID = ShortID(l.EnvID.Short())
	return l
}

// Less orders packages by name, then version (bytewise).
func (p ResolvedPackage) Less(q ResolvedPackage) bool {
	if p.Name != q.Name {
		return p.Name < q.Name
	}
	return p.Version < q.Version
}

// Identity is the canonical environment identity (the original's compute_identity):
// BLAKE3 over the resolved fields. lock_version, base_image, env_id and short_id are not
// part of it.
func (l *Lock) Identity() EnvID {
	h := Hasher()
	w := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
		}
	}
	w("base_digest:", l.BaseImageDigest)
	for _, p := range l.ResolvedPackages {
		w("pkg:", p.Name, "@", p.Version)
	}
	for _, a := range l.ResolvedApps {
		w("app:", a)
	}
	if l.HardwareGPU {
		w("hw:gpu")
	}
	if l.HardwareAudio {
		w("hw:audio")
	}
	for _, m := range l.Mounts {
		w("mount:", m.Label, ":", m.HostPath, ":", m.ContainerPath)
	}
	w("backend:", l.RuntimeBackend)
	if l.NetworkIsolation {
		w("net:isolated")
	}
	if l.CPUShares != nil {
		w("cpu:", strconv.FormatUint(*l.CPUShares, 10))
	}
	if l.MemoryLimitMB != nil {
		w("mem:", strconv.FormatUint(*l.MemoryLimitMB, 10))
	}
	return DigestOf(h)
}

// VerifyIntegrity recomputes the identity and checks it against the stored env_id and
// short_id (the original checked env_id only). It returns the identity, or an
// *EnvIDMismatchError.
func (l *Lock) VerifyIntegrity() (EnvID, error) {
	id := l.Identity()
	if l.EnvID != id {
		return id, &EnvIDMismatchError{LockID: l.EnvID.String(), ComputedID: id.String()}
	}
	if string(l.ShortID) != id.Short() {
		return id, &EnvIDMismatchError{LockID: string(l.ShortID), ComputedID: id.Short(), ShortID: true}
	}
	return id, nil
}

// VerifyManifestIntent checks that the manifest still asks for what the lock pinned.
// The first four checks and their messages are the original's; the rest (packages
// removed from the manifest, gui apps, mounts, network isolation, resource limits) are
// ours. Every mismatch is a *DriftError.
//
// The package checks assume that a lock pins exactly the manifest's packages and, from
// builds that pin them, its gui apps: what every backend's resolve returns for the
// names it is given (one entry per requested package).
func (l *Lock) VerifyManifestIntent(n *Normalized) error {
	drift := func(field, format string, args ...any) error {
		return &DriftError{Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	if l.BaseImage != n.BaseImage {
		return drift("base_image", "base image changed: lock has '%s', manifest has '%s'", l.BaseImage, n.BaseImage)
	}
	if l.RuntimeBackend != n.RuntimeBackend {
		return drift("runtime_backend", "runtime backend changed: lock has '%s', manifest has '%s'", l.RuntimeBackend, n.RuntimeBackend)
	}
	locked := make(map[string]bool, len(l.ResolvedPackages))
	for _, p := range l.ResolvedPackages {
		locked[p.Name] = true
	}
	for _, p := range n.SystemPackages {
		if !locked[p] {
			return drift("system_packages", "package '%s' is in manifest but not in lock file. Run 'karapace build' to re-resolve.", p)
		}
	}
	if l.HardwareGPU != n.HardwareGPU || l.HardwareAudio != n.HardwareAudio {
		return drift("hardware", "hardware policy changed. Run 'karapace build' to re-resolve.")
	}

	wanted := make(map[string]bool, len(n.SystemPackages)+len(n.GUIApps))
	for _, p := range n.SystemPackages {
		wanted[p] = true
	}
	for _, a := range n.GUIApps {
		wanted[a] = true // a pinned app (resolveNames in core)
	}
	for _, p := range l.ResolvedPackages {
		if !wanted[p.Name] {
			return drift("system_packages", "package '%s' is in lock file but not in manifest. Run 'karapace build' to re-resolve.", p.Name)
		}
	}
	if !equalStrings(l.ResolvedApps, n.GUIApps) {
		return drift("gui_apps", "gui apps changed: lock has %s, manifest has %s. Run 'karapace build' to re-resolve.", listText(l.ResolvedApps), listText(n.GUIApps))
	}
	if err := mountDrift(l.Mounts, n.Mounts); err != "" {
		return drift("mounts", "%s. Run 'karapace build' to re-resolve.", err)
	}
	if l.NetworkIsolation != n.NetworkIsolation {
		return drift("network_isolation", "network isolation changed: lock has %t, manifest has %t. Run 'karapace build' to re-resolve.", l.NetworkIsolation, n.NetworkIsolation)
	}
	if !equalLimit(l.CPUShares, n.CPUShares) {
		return drift("cpu_shares", "cpu_shares changed: lock has %s, manifest has %s. Run 'karapace build' to re-resolve.", limitText(l.CPUShares), limitText(n.CPUShares))
	}
	if !equalLimit(l.MemoryLimitMB, n.MemoryLimitMB) {
		return drift("memory_limit_mb", "memory_limit_mb changed: lock has %s, manifest has %s. Run 'karapace build' to re-resolve.", limitText(l.MemoryLimitMB), limitText(n.MemoryLimitMB))
	}
	return nil
}

// mountDrift describes the first difference between the lock's and the manifest's
// mounts, or returns "".
func mountDrift(locked, wanted []Mount) string {
	byLabel := make(map[string]Mount, len(locked))
	for _, m := range locked {
		byLabel[m.Label] = m
	}
	for _, m := range wanted {
		lm, ok := byLabel[m.Label]
		if !ok {
			return fmt.Sprintf("mount '%s' is in manifest but not in lock file", m.Label)
		}
		if lm != m {
			return fmt.Sprintf("mount '%s' changed: lock has '%s:%s', manifest has '%s:%s'", m.Label, lm.HostPath, lm.ContainerPath, m.HostPath, m.ContainerPath)
		}
	}
	inManifest := make(map[string]bool, len(wanted))
	for _, m := range wanted {
		inManifest[m.Label] = true
	}
	for _, m := range locked {
		if !inManifest[m.Label] {
			return fmt.Sprintf("mount '%s' is in lock file but not in manifest", m.Label)
		}
	}
	if len(locked) != len(wanted) {
		return "mounts changed"
	}
	for i := range locked {
		if locked[i] != wanted[i] {
			return "mount order changed"
		}
	}
	return ""
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func listText(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return "'" + strings.Join(l, "', '") + "'"
}

func equalLimit(a, b *uint64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func limitText(p *uint64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatUint(*p, 10)
}

// lockWire is the lock file as decoded: pointers tell absent from zero, so that
// required fields can be enforced.
type lockWire struct {
	LockVersion      *int64         `toml:"lock_version"`
	EnvID            *string        `toml:"env_id"`
	ShortID          *string        `toml:"short_id"`
	BaseImage        *string        `toml:"base_image"`
	BaseImageDigest  *string        `toml:"base_image_digest"`
	ResolvedPackages *[]packageWire `toml:"resolved_packages"`
	ResolvedApps     *[]string      `toml:"resolved_apps"`
	RuntimeBackend   *string        `toml:"runtime_backend"`
	HardwareGPU      *bool          `toml:"hardware_gpu"`
	HardwareAudio    *bool          `toml:"hardware_audio"`
	NetworkIsolation *bool          `toml:"network_isolation"`
	Mounts           []mountWire    `toml:"mounts"`
	CPUShares        *int64         `toml:"cpu_shares"`
	MemoryLimitMB    *int64         `toml:"memory_limit_mb"`
}

type packageWire struct {
	Name    *string `toml:"name"`
	Version *string `toml:"version"`
}

type mountWire struct {
	Label         *string `toml:"label"`
	HostPath      *string `toml:"host_path"`
	ContainerPath *string `toml:"container_path"`
}

// ParseLock parses a v2 lock file. Unknown keys are ignored (as in the original); every
// field but mounts, cpu_shares and memory_limit_mb is required; lock_version must be 2;
// env_id and short_id must be well-formed ids. Integrity is not checked here: call
// VerifyIntegrity. Errors wrap ErrLock and ErrLockSyntax.
func ParseLock(data []byte) (*Lock, error) {
	if len(data) > MaxLockSize {
		return nil, lockSyntaxErr(nil, "lock file is %d bytes, more than the limit of %d bytes", len(data), MaxLockSize)
	}
	if err := checkText(data); err != nil {
		return nil, lockSyntaxErr(nil, "%v", err)
	}
	if err := checkNesting(data); err != nil {
		return nil, lockSyntaxErr(nil, "%v", err)
	}
	var w lockWire
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&w); err != nil {
		return nil, tomlErr(lockSyntaxErr, err)
	}
	missing := func(field string) error { return lockSyntaxErr(nil, "missing field `%s`", field) }
	// The version first: a lock of another version may lack fields of this one.
	if w.LockVersion == nil {
		return nil, missing("lock_version")
	}
	if *w.LockVersion != LockVersion {
		return nil, lockSyntaxErr(nil, "unsupported lock_version: %d, expected %d", *w.LockVersion, LockVersion)
	}
	switch {
	case w.EnvID == nil:
		return nil, missing("env_id")
	case w.ShortID == nil:
		return nil, missing("short_id")
	case w.BaseImage == nil:
		return nil, missing("base_image")
	case w.BaseImageDigest == nil:
		return nil, missing("base_image_digest")
	case w.ResolvedPackages == nil:
		return nil, missing("resolved_packages")
	case w.ResolvedApps == nil:
		return nil, missing("resolved_apps")
	case w.RuntimeBackend == nil:
		return nil, missing("runtime_backend")
	case w.HardwareGPU == nil:
		return nil, missing("hardware_gpu")
	case w.HardwareAudio == nil:
		return nil, missing("hardware_audio")
	case w.NetworkIsolation == nil:
		return nil, missing("network_isolation")
	}
	id, err := ParseEnvID(*w.EnvID)
	if err != nil {
		return nil, lockSyntaxErr(err, "env_id: %v", err)
	}
	short, err := ParseShortID(*w.ShortID)
	if err != nil {
		return nil, lockSyntaxErr(err, "short_id: %v", err)
	}
	l := &Lock{
		LockVersion:      LockVersion,
		EnvID:            id,
		ShortID:          short,
		BaseImage:        *w.BaseImage,
		BaseImageDigest:  *w.BaseImageDigest,
		ResolvedPackages: make([]ResolvedPackage, 0, len(*w.ResolvedPackages)),
		ResolvedApps:     append([]string{}, *w.ResolvedApps...),
		RuntimeBackend:   *w.RuntimeBackend,
		HardwareGPU:      *w.HardwareGPU,
		HardwareAudio:    *w.HardwareAudio,
		NetworkIsolation: *w.NetworkIsolation,
		Mounts:           make([]Mount, 0, len(w.Mounts)),
	}
	for i, p := range *w.ResolvedPackages {
		if p.Name == nil || p.Version == nil {
			return nil, lockSyntaxErr(nil, "resolved_packages[%d]: missing field `%s`", i, firstMissing(p.Name == nil, "name", "version"))
		}
		l.ResolvedPackages = append(l.ResolvedPackages, ResolvedPackage{Name: *p.Name, Version: *p.Version})
	}
	for i, m := range w.Mounts {
		switch {
		case m.Label == nil:
			return nil, lockSyntaxErr(nil, "mounts[%d]: missing field `label`", i)
		case m.HostPath == nil:
			return nil, lockSyntaxErr(nil, "mounts[%d]: missing field `host_path`", i)
		case m.ContainerPath == nil:
			return nil, lockSyntaxErr(nil, "mounts[%d]: missing field `container_path`", i)
		}
		l.Mounts = append(l.Mounts, Mount{Label: *m.Label, HostPath: *m.HostPath, ContainerPath: *m.ContainerPath})
	}
	for _, lim := range []struct {
		name string
		in   *int64
		out  **uint64
	}{{"cpu_shares", w.CPUShares, &l.CPUShares}, {"memory_limit_mb", w.MemoryLimitMB, &l.MemoryLimitMB}} {
		if lim.in == nil {
			continue
		}
		if *lim.in < 0 {
			return nil, lockSyntaxErr(nil, "invalid value for `%s`: %d is negative, expected an unsigned integer", lim.name, *lim.in)
		}
		v := uint64(*lim.in)
		*lim.out = &v
	}
	return l, nil
}

func firstMissing(first bool, a, b string) string {
	if first {
		return a
	}
	return b
}

// ReadLock reads and parses the lock file at path. A read failure wraps ErrLockIO and
// the OS error (errors.Is(err, fs.ErrNotExist) works).
func ReadLock(path string) (*Lock, error) {
	data, err := readCapped(path, MaxLockSize)
	if err != nil {
		return nil, lockErr(ErrLockIO, err, "lock file I/O error: %s: %v", path, bareIOError(err))
	}
	return ParseLock(data)
}

// Marshal encodes the lock exactly as the original's writer (the toml crate's pretty
// serializer) lays it out: root keys in field order (absent limits omitted), arrays of
// two or more strings one element per line, non-empty package and mount lists as arrays
// of tables at the end. Strings are TOML basic strings.
func (l *Lock) Marshal() []byte {
	var b bytes.Buffer
	kv := func(key, value string) { b.WriteString(key + " = " + value + "\n") }
	kv("lock_version", strconv.FormatUint(uint64(l.LockVersion), 10))
	kv("env_id", tomlString(l.EnvID.String()))
	kv("short_id", tomlString(string(l.ShortID)))
	kv("base_image", tomlString(l.BaseImage))
	kv("base_image_digest", tomlString(l.BaseImageDigest))
	if len(l.ResolvedPackages) == 0 {
		kv("resolved_packages", "[]")
	}
	kv("resolved_apps", tomlStringArray(l.ResolvedApps))
	kv("runtime_backend", tomlString(l.RuntimeBackend))
	kv("hardware_gpu", strconv.FormatBool(l.HardwareGPU))
	kv("hardware_audio", strconv.FormatBool(l.HardwareAudio))
	kv("network_isolation", strconv.FormatBool(l.NetworkIsolation))
	if len(l.Mounts) == 0 {
		kv("mounts", "[]")
	}
	if l.CPUShares != nil {
		kv("cpu_shares", strconv.FormatUint(*l.CPUShares, 10))
	}
	if l.MemoryLimitMB != nil {
		kv("memory_limit_mb", strconv.FormatUint(*l.MemoryLimitMB, 10))
	}
	for _, p := range l.ResolvedPackages {
		b.WriteString("\n[[resolved_packages]]\n")
		kv("name", tomlString(p.Name))
		kv("version", tomlString(p.Version))
	}
	for _, m := range l.Mounts {
		b.WriteString("\n[[mounts]]\n")
		kv("label", tomlString(m.Label))
		kv("host_path", tomlString(m.HostPath))
		kv("container_path", tomlString(m.ContainerPath))
	}
	return b.Bytes()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlStringArray renders a string array as the toml crate's pretty mode does: inline
// when it has fewer than two elements, otherwise one element per line with a trailing
// comma.
func tomlStringArray(l []string) string {
	switch len(l) {
	case 0:
		return "[]"
	case 1:
		return "[" + tomlString(l[0]) + "]"
	}
	var b strings.Builder
	b.WriteString("[\n")
	for _, s := range l {
		b.WriteString("    " + tomlString(s) + ",\n")
	}
	b.WriteString("]")
	return b.String()
}

// WriteFile writes the lock to path atomically: a temp file in the same directory,
// fsync, rename over path, fsync the directory. The file is 0644 (the original left it
// 0600). Errors wrap ErrLock and ErrLockIO.
func (l *Lock) WriteFile(path string) error {
	if err := writeFileAtomic(path, l.Marshal(), 0o644); err != nil {
		return lockErr(ErrLockIO, err, "lock file I/O error: %v", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temp file in the same directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The file is in place; from here on an error must not remove anything.
	d, derr := os.Open(dir)
	if derr != nil {
		return fmt.Errorf("fsync directory: %w", derr)
	}
	defer d.Close()
	if derr := d.Sync(); derr != nil {
		return fmt.Errorf("fsync directory: %w", derr)
	}
	return nil
}
