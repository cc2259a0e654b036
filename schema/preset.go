package schema

import "embed"

// Preset is a built-in manifest offered by `karapace preset`.
type Preset struct {
	Name        string
	Description string
	Manifest    string // TOML text of a v1 manifest
}

// presetManifest writes the shape shared by every preset: base image rolling, then the
// optional system and hardware sections, then the namespace backend.
func presetManifest(packages string, hardware bool) string {
	s := "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n"
	if packages != "" {
		s += "[system]\npackages = " + packages + "\n\n"
	}
	if hardware {
		s += "[hardware]\ngpu = true\naudio = true\n\n"
	}
	return s + "[runtime]\nbackend = \"namespace\"\n"
}

// Presets returns the six built-in presets, in the original's order.
func Presets() []Preset {
	return []Preset{
		{"dev", "Development environment with common build tools",
			presetManifest(`["git", "curl", "wget", "vim", "gcc", "make", "cmake"]`, false)},
		{"dev-rust", "Rust development environment",
			presetManifest(`["git", "curl", "gcc", "make", "rustup"]`, false)},
		{"dev-python", "Python development environment",
			presetManifest(`["git", "curl", "python3", "python3-pip", "python3-venv"]`, false)},
		{"gui-app", "GUI application environment with GPU and audio passthrough",
			presetManifest("", true)},
		{"gaming", "Gaming environment with GPU, audio, and Vulkan support",
			presetManifest(`["mesa-dri", "vulkan-loader", "libvulkan1", "alsa-plugins"]`, true)},
		{"minimal", "Minimal environment with no extra packages",
			presetManifest("", false)},
	}
}

// PresetByName returns the preset with exactly this name.
func PresetByName(name string) (Preset, bool) {
	for _, p := range Presets() {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// Template is a starting manifest for `karapace new --template`: the original's
// examples/*.toml, comments included.
type Template struct {
	Name     string
	Manifest string // TOML text of a v1 manifest
}

//go:embed templates/*.toml
var templateFiles embed.FS

// templateNames is the order the CLI lists them in.
var templateNames = []string{"minimal", "dev", "gui-dev", "rust-dev", "ubuntu-dev"}

// Templates returns the five `new` templates: minimal, dev, gui-dev, rust-dev,
// ubuntu-dev.
func Templates() []Template {
	out := make([]Template, 0, len(templateNames))
	for _, name := range templateNames {
		b, err := templateFiles.ReadFile("templates/" + name + ".toml")
		if err != nil {
			// Embedded at build time; a missing file is caught by the tests.
			continue
		}
		out = append(out, Template{Name: name, Manifest: string(b)})
	}
	return out
}

// TemplateNames returns the template names in order, for messages such as
// "unknown template 'x' (expected: minimal, dev, gui-dev, rust-dev, ubuntu-dev)".
func TemplateNames() []string { return append([]string{}, templateNames...) }

// TemplateByName returns the template with exactly this name.
func TemplateByName(name string) (Template, bool) {
	for _, t := range Templates() {
		if t.Name == name {
			return t, true
		}
	}
	return Template{}, false
}
