package core

import (
	"context"
	"fmt"
	"os"

	"github.com/karapace/karapace/runtime/export"
	"github.com/karapace/karapace/schema"
)

// resolveNames is what a build asks its backend to resolve and pin: the manifest's
// system packages, then each `[gui] apps` entry not among them. An app is a package, so
// the lock pins its version in resolved_packages like any other, and the environment's
// id covers it (the original pinned system packages only, and installed apps at
// whatever version the image offered that day). A locked build from a lock that did
// not pin an app (the original's locks, and ours before apps were pinned) leaves that
// app out, so that the resolution still matches the lock's id; withApps then installs
// it by name, as before.
func resolveNames(n *schema.Normalized, locked *schema.Lock) []string {
	names := append([]string{}, n.SystemPackages...)
	have := make(map[string]bool, len(names)+len(n.GUIApps))
	for _, p := range names {
		have[p] = true
	}
	pinned := map[string]bool{}
	if locked != nil {
		for _, p := range locked.ResolvedPackages {
			pinned[p.Name] = true
		}
	}
	for _, a := range n.GUIApps {
		if !have[a] && (locked == nil || pinned[a]) {
			have[a] = true
			names = append(names, a)
		}
	}
	return names
}

// withApps returns the packages and package names a build installs: the lock's pinned
// packages (the system packages and, in a lock that pins them, the apps), then each
// `[gui] apps` entry not among them, by name only (see resolveNames).
func withApps(pinned []schema.ResolvedPackage, names, apps []string) ([]schema.ResolvedPackage, []string) {
	pkgs := append([]schema.ResolvedPackage{}, pinned...)
	isPinned := make(map[string]bool, len(pinned)+len(apps))
	for _, p := range pinned {
		isPinned[p.Name] = true
	}
	all := append([]string{}, names...)
	listed := make(map[string]bool, len(names)+len(pinned)+len(apps))
	for _, n := range names {
		listed[n] = true
	}
	list := func(n string) {
		if !listed[n] {
			listed[n] = true
			all = append(all, n)
		}
	}
	for _, p := range pinned {
		list(p.Name)
	}
	for _, a := range apps {
		if !isPinned[a] {
			isPinned[a] = true
			pkgs = append(pkgs, schema.ResolvedPackage{Name: a})
		}
		list(a)
	}
	return pkgs, all
}

// exportDirs are where app launchers and desktop entries go.
func (e *Engine) exportDirs() (export.Dirs, error) {
	if e.opts.ExportDirs != nil {
		return *e.opts.ExportDirs, nil
	}
	return export.DirsFromEnv(os.Getenv)
}

// exportApps exports each app as a launcher and a desktop entry running the app's
// command (its name) in the environment, and returns the names exported. It is what
// follows a successful build, so a failure is logged as a warning, not returned: the
// environment is built and usable, and `karapace export-app` can retry.
func (e *Engine) exportApps(ctx context.Context, id schema.EnvID, apps []string) []string {
	if len(apps) == 0 {
		return nil
	}
	d, err := e.exportDirs()
	if err != nil {
		e.log.Warn("gui apps not exported", "env", id.Short(), "err", err)
		return nil
	}
	var done []string
	for _, a := range apps {
		_, err := export.Export(ctx, d, export.App{
			EnvID: id, Name: a, Command: []string{a}, Karapace: e.opts.Executable, Store: e.opts.StoreRoot,
		})
		if err != nil {
			e.log.Warn("gui app not exported", "env", id.Short(), "app", a, "err", err)
			continue
		}
		done = append(done, a)
	}
	return done
}

// unexportApps removes every app export of an environment (after a destroy); failures
// are warnings, since the environment is gone either way.
func (e *Engine) unexportApps(ctx context.Context, id schema.EnvID) {
	d, err := e.exportDirs()
	if err != nil {
		e.log.Debug("app exports not checked", "env", id.Short(), "err", err)
		return
	}
	names, err := export.UnexportAll(ctx, d, id)
	if err != nil {
		e.log.Warn("remove app exports", "env", id.Short(), "err", err)
	}
	if len(names) > 0 {
		e.log.Info("removed app exports", "env", id.Short(), "apps", names)
	}
}

// ExportApp exports command, run in the environment, as a desktop application named
// name: a launcher in ~/.local/bin and a .desktop entry (`karapace export-app`). The
// environment must have been built and not archived.
func (e *Engine) ExportApp(ctx context.Context, id schema.EnvID, name string, command []string) (export.Exported, error) {
	m, err := e.get(ctx, id)
	if err != nil {
		return export.Exported{}, err
	}
	if m.State == Defined || m.State == Archived {
		return export.Exported{}, &TransitionError{From: m.State.String(), To: "export-app requires a built environment"}
	}
	if len(command) == 0 {
		return export.Exported{}, fmt.Errorf("export-app needs a command to run")
	}
	d, err := e.exportDirs()
	if err != nil {
		return export.Exported{}, err
	}
	return export.Export(ctx, d, export.App{EnvID: id, Name: name, Command: command, Karapace: e.opts.Executable, Store: e.opts.StoreRoot})
}

// UnexportApp removes the launcher and desktop entry an ExportApp of this environment
// wrote under name (`karapace unexport-app`).
func (e *Engine) UnexportApp(ctx context.Context, id schema.EnvID, name string) error {
	d, err := e.exportDirs()
	if err != nil {
		return err
	}
	return export.Unexport(ctx, d, id, name)
}

// Apps lists the environment's exported applications.
func (e *Engine) Apps(ctx context.Context, id schema.EnvID) ([]export.Exported, error) {
	d, err := e.exportDirs()
	if err != nil {
		return nil, err
	}
	return export.List(ctx, d, id)
}
