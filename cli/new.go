package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// manifestFile is where `new` writes, always in the current directory.
const manifestFile = "./karapace.toml"

type newOptions struct {
	name        string
	template    string
	force       bool
	interactive bool // stdin and stderr are terminals
	json        bool
	dir         string // directory to write into; "" is the current directory
}

// newResult is the `--json` shape of `new`.
type newResult struct {
	Status   string  `json:"status"`
	Path     string  `json:"path"`
	Name     string  `json:"name"`
	Template *string `json:"template"`
}

func newNewCommand(g *globals) *cobra.Command {
	var opts newOptions
	cmd := &cobra.Command{
		Use:   "new <name>",
		Short: "Write a new karapace.toml in the current directory",
		Long: "Write ./karapace.toml, from a template (--template) and, on a terminal, from answers\n" +
			"to a few questions. Templates: " + strings.Join(schema.TemplateNames(), ", ") + ".\n" +
			"The name goes to ./karapace.name: the first build names its environment so, later\n" +
			"builds carry the name over, and enter/exec without a name find it from the directory.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			opts.json = g.json
			opts.interactive = g.isTTY(g.stdin) && g.isTTY(g.stderr)
			return runNew(cmd.Context(), opts, newPrompter(g.stdin, g.stderr), g.stdout)
		},
	}
	cmd.Flags().StringVarP(&opts.template, "template", "t", "", "start from a template ("+strings.Join(schema.TemplateNames(), ", ")+")")
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "overwrite an existing karapace.toml")
	return cmd
}

func runNew(_ context.Context, opts newOptions, p *prompter, w io.Writer) error {
	path := filepath.Join(opts.dir, "karapace.toml")
	if err := store.ValidateName(opts.name); err != nil {
		return usageError{fmt.Errorf("new: %w", err)}
	}
	var m *schema.Manifest
	var templateText []byte
	if opts.template != "" {
		t, ok := schema.TemplateByName(opts.template)
		if !ok {
			return fmt.Errorf("unknown template '%s' (expected: %s)", opts.template, strings.Join(schema.TemplateNames(), ", "))
		}
		var err error
		templateText = []byte(t.Manifest)
		if m, err = schema.ParseManifest(templateText); err != nil {
			return fmt.Errorf("template parse error: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil && !opts.force {
		ok := false
		if opts.interactive {
			var perr error
			if ok, perr = p.Confirm("overwrite "+manifestFile+"?", false); perr != nil {
				return perr
			}
		}
		if !ok {
			return fmt.Errorf("refusing to overwrite existing %s (pass --force)", manifestFile)
		}
	}
	if m == nil {
		if !opts.interactive {
			return errors.New("no --template provided and stdin is not a TTY")
		}
		image, err := p.Input("base image", "debian/bookworm")
		if err != nil {
			return err
		}
		m = schema.NewManifest(image)
	}
	if opts.interactive {
		if err := promptManifest(p, m); err != nil {
			return err
		}
	}
	// A template taken as it is keeps its comments; answers to the prompts mean a
	// re-encoded manifest.
	data := templateText
	if opts.interactive || data == nil {
		var err error
		if data, err = encodeManifest(m); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return err
	}
	// The name is the project's: the first build names its environment so.
	if err := writeFileAtomic(filepath.Join(opts.dir, core.ProjectNameFile), []byte(opts.name+"\n"), 0o644); err != nil {
		return err
	}
	if opts.json {
		res := newResult{Status: "written", Path: manifestFile, Name: opts.name}
		if opts.template != "" {
			res.Template = &opts.template
		}
		return writeJSON(w, res)
	}
	if err := printf(w, "wrote %s and %s for '%s'\n", manifestFile, core.ProjectNameFile, opts.name); err != nil {
		return err
	}
	if opts.template != "" {
		return printf(w, "template: %s\n", opts.template)
	}
	return nil
}

// promptManifest asks the original's questions and applies the answers to m.
func promptManifest(p *prompter, m *schema.Manifest) error {
	pkgs, err := p.Input("packages (separated by spaces or commas, empty to skip)", "")
	if err != nil {
		return err
	}
	// "git, curl" and "git curl" both name two packages: no package name has a comma.
	m.System.Packages = append(m.System.Packages, strings.FieldsFunc(pkgs, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	mount, err := p.Input("mount (format '<host>:<container>', empty to skip)", "")
	if err != nil {
		return err
	}
	if mount != "" {
		if m.Mounts == nil {
			m.Mounts = map[string]string{}
		}
		m.Mounts["workspace"] = mount
	}
	backend := m.Runtime.Backend
	if backend == "" {
		backend = schema.DefaultBackend
	}
	if m.Runtime.Backend, err = p.Select("runtime backend", []string{"namespace", "oci", "mock"}, backend); err != nil {
		return err
	}
	m.Runtime.NetworkIsolation, err = p.Confirm("enable network isolation?", m.Runtime.NetworkIsolation)
	return err
}

// encodeManifest writes m as TOML with every section present.
func encodeManifest(m *schema.Manifest) ([]byte, error) {
	if m.System.Packages == nil {
		m.System.Packages = []string{}
	}
	if m.GUI.Apps == nil {
		m.GUI.Apps = []string{}
	}
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("TOML serialization failed: %w", err)
	}
	return buf.Bytes(), nil
}

// writeFileAtomic replaces path with data: a temp file in the same directory, fsync,
// rename, fsync of the directory. The temp file is removed on any error.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".karapace-*.tmp")
	if err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync temp file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("persist manifest: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
