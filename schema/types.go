package schema

// Normalized is a validated, normalized manifest (the original's NormalizedManifest).
// Field order is the canonical JSON key order: do not reorder.
type Normalized struct {
	ManifestVersion  uint32   `json:"manifest_version"`
	BaseImage        string   `json:"base_image"`
	SystemPackages   []string `json:"system_packages"`
	GUIApps          []string `json:"gui_apps"`
	HardwareGPU      bool     `json:"hardware_gpu"`
	HardwareAudio    bool     `json:"hardware_audio"`
	Mounts           []Mount  `json:"mounts"`
	RuntimeBackend   string   `json:"runtime_backend"`
	NetworkIsolation bool     `json:"network_isolation"`
	CPUShares        *uint64  `json:"cpu_shares"`
	MemoryLimitMB    *uint64  `json:"memory_limit_mb"`
	// Env is the manifest's [env] (ours), left out of the JSON when empty, so a manifest
	// without it encodes, hashes and reads as the original's.
	Env map[string]string `json:"env,omitempty"`
}

// Mount is a normalized `[mounts]` entry: `label = "host:container"`.
type Mount struct {
	Label         string `json:"label" toml:"label"`
	HostPath      string `json:"host_path" toml:"host_path"`
	ContainerPath string `json:"container_path" toml:"container_path"`
}

// ResolvedPackage is a package pinned to an exact version by a backend's resolver.
type ResolvedPackage struct {
	Name    string `json:"name" toml:"name"`
	Version string `json:"version" toml:"version"`
}

// Resolution is what a runtime backend's resolver returns: the base image digest and the
// exact version of every requested system package.
type Resolution struct {
	BaseImageDigest  string
	ResolvedPackages []ResolvedPackage
}
