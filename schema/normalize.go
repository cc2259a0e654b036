package schema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Normalize validates the manifest and returns its canonical form: trimmed, sorted,
// deduplicated, backend lowercased, mounts parsed and sorted by label. The checks run in
// the original's order and the first failure wins; all errors wrap ErrManifest.
//
// One rule is ours: two mount labels that are equal after trimming (`a` and ` a`) are
// rejected with ErrDuplicateMountLabel, where the original kept both.
func (m *Manifest) Normalize() (*Normalized, error) {
	if m.ManifestVersion != 1 {
		return nil, manifestErr(ErrUnsupportedVersion, nil, "unsupported manifest_version: %d, expected 1", m.ManifestVersion)
	}
	image := strings.TrimSpace(m.Base.Image)
	if image == "" {
		return nil, manifestErr(ErrEmptyBaseImage, nil, "base.image must not be empty")
	}

	rawLabels := make([]string, 0, len(m.Mounts))
	for label := range m.Mounts {
		rawLabels = append(rawLabels, label)
	}
	sort.Strings(rawLabels)
	mounts := make([]Mount, 0, len(rawLabels))
	seen := make(map[string]string, len(rawLabels))
	for _, raw := range rawLabels {
		label := strings.TrimSpace(raw)
		if label == "" {
			return nil, manifestErr(ErrEmptyMountLabel, nil, "mount label must not be empty")
		}
		spec := m.Mounts[raw]
		host, container, ok := strings.Cut(spec, ":")
		host, container = strings.TrimSpace(host), strings.TrimSpace(container)
		if !ok || host == "" || container == "" {
			return nil, manifestErr(ErrInvalidMount, nil, "invalid mount declaration for '%s': '%s', expected '<host>:<container>'", raw, spec)
		}
		if other, dup := seen[label]; dup {
			return nil, manifestErr(ErrDuplicateMountLabel, nil, "duplicate mount label '%s': declared as '%s' and '%s'", label, other, raw)
		}
		seen[label] = raw
		mounts = append(mounts, Mount{Label: label, HostPath: host, ContainerPath: container})
	}
	sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].Label < mounts[j].Label })

	env, err := normalizeEnv(m.Env)
	if err != nil {
		return nil, err
	}

	return &Normalized{
		ManifestVersion:  m.ManifestVersion,
		BaseImage:        image,
		SystemPackages:   normalizeList(m.System.Packages),
		GUIApps:          normalizeList(m.GUI.Apps),
		HardwareGPU:      m.Hardware.GPU,
		HardwareAudio:    m.Hardware.Audio,
		Mounts:           mounts,
		RuntimeBackend:   rustLower(strings.TrimSpace(m.Runtime.Backend)),
		NetworkIsolation: m.Runtime.NetworkIsolation,
		CPUShares:        copyUint(m.Runtime.ResourceLimits.CPUShares),
		MemoryLimitMB:    copyUint(m.Runtime.ResourceLimits.MemoryLimitMB),
		Env:              env,
	}, nil
}

// normalizeEnv checks [env]: names of letters, digits and underscores that do not start
// with a digit, values without NUL bytes. The result is nil when there is nothing.
func normalizeEnv(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if !validEnvName(k) {
			return nil, manifestErr(ErrInvalidEnv, nil, "invalid variable name in [env]: '%s' (letters, digits and _, not starting with a digit)", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, manifestErr(ErrInvalidEnv, nil, "variable '%s' in [env] holds a NUL byte", k)
		}
		out[k] = v
	}
	return out, nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// normalizeList trims each entry, drops empty ones, sorts by bytes and removes
// duplicates. The result is never nil.
func normalizeList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

func copyUint(p *uint64) *uint64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// RequirePinned returns an UnpinnedBaseImageError unless the base image is a URL
// (starts with http:// or https://, case-sensitive, as in the original).
func (n *Normalized) RequirePinned() error {
	if strings.HasPrefix(n.BaseImage, "http://") || strings.HasPrefix(n.BaseImage, "https://") {
		return nil
	}
	return UnpinnedBaseImageError(n.BaseImage)
}

// withSlices returns a shallow copy of n whose nil slices are empty, so that JSON has
// `[]` where serde_json has it, never `null`.
func (n *Normalized) withSlices() Normalized {
	c := *n
	if c.SystemPackages == nil {
		c.SystemPackages = []string{}
	}
	if c.GUIApps == nil {
		c.GUIApps = []string{}
	}
	if c.Mounts == nil {
		c.Mounts = []Mount{}
	}
	return c
}

// CanonicalJSON is the compact serde_json encoding of the normalized manifest, byte for
// byte: the form that is hashed and stored as the manifest object.
func (n *Normalized) CanonicalJSON() []byte {
	c := n.withSlices()
	b, err := MarshalCompact(&c)
	if err != nil {
		// Strings, bools and integers cannot fail to encode.
		return nil
	}
	return b
}

// DecodeNormalized decodes a stored canonical JSON manifest (unknown keys are ignored,
// as in the original). Slices are never nil afterwards.
func DecodeNormalized(data []byte) (*Normalized, error) {
	var n Normalized
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, manifestErr(ErrManifestSyntax, err, "failed to decode normalized manifest: %v", err)
	}
	c := n.withSlices()
	return &c, nil
}

// PreliminaryID is the original's compute_env_id: the identity of a manifest before
// resolution, used by init and to find the environment a rebuild replaces. The real
// identity of an environment is Lock.Identity.
func (n *Normalized) PreliminaryID() EnvID {
	h := Hasher()
	w := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
		}
	}
	h.Write(n.CanonicalJSON())
	w(SumString(n.BaseImage).String())
	for _, p := range n.SystemPackages {
		w("pkg:", p)
	}
	for _, a := range n.GUIApps {
		w("app:", a)
	}
	if n.HardwareGPU {
		w("hw:gpu")
	}
	if n.HardwareAudio {
		w("hw:audio")
	}
	for _, m := range n.Mounts {
		w("mount:", m.Label, ":", m.HostPath, ":", m.ContainerPath)
	}
	w("backend:", n.RuntimeBackend)
	if n.NetworkIsolation {
		w("net:isolated")
	}
	if n.CPUShares != nil {
		w("cpu:", strconv.FormatUint(*n.CPUShares, 10))
	}
	if n.MemoryLimitMB != nil {
		w("mem:", strconv.FormatUint(*n.MemoryLimitMB, 10))
	}
	return DigestOf(h)
}

// Identity is an environment identity as the original prints it in JSON:
// {"env_id": ..., "short_id": ...}.
type Identity struct {
	EnvID   EnvID   `json:"env_id"`
	ShortID ShortID `json:"short_id"`
}

// NewIdentity returns the identity for id.
func NewIdentity(id EnvID) Identity { return Identity{EnvID: id, ShortID: ShortID(id.Short())} }

// String returns the full env id.
func (i Identity) String() string { return i.EnvID.String() }

// UnresolvedResolution is the placeholder resolution the original's init writes into a
// lock before any backend has run: digest = blake3("unresolved:" + base image), every
// system package at version "unresolved".
func UnresolvedResolution(n *Normalized) Resolution {
	pkgs := make([]ResolvedPackage, 0, len(n.SystemPackages))
	for _, p := range n.SystemPackages {
		pkgs = append(pkgs, ResolvedPackage{Name: p, Version: "unresolved"})
	}
	return Resolution{BaseImageDigest: SumString("unresolved:" + n.BaseImage).String(), ResolvedPackages: pkgs}
}

// MockResolution is what the mock backend resolves: digest = blake3("mock-image:" + base
// image), every system package at version "0.0.0-mock".
func MockResolution(n *Normalized) Resolution {
	pkgs := make([]ResolvedPackage, 0, len(n.SystemPackages))
	for _, p := range n.SystemPackages {
		pkgs = append(pkgs, ResolvedPackage{Name: p, Version: "0.0.0-mock"})
	}
	return Resolution{BaseImageDigest: SumString("mock-image:" + n.BaseImage).String(), ResolvedPackages: pkgs}
}

// String is a one-line summary for logs.
func (m Mount) String() string { return fmt.Sprintf("%s=%s:%s", m.Label, m.HostPath, m.ContainerPath) }
