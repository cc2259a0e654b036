package core

import (
	"context"
	"fmt"
	"os"

	"github.com/karapace/karapace/runtime/export"
	"github.com/karapace/karapace/schema"
)

// withApps returns the packages and package names a build installs: the lock's pinned
// system packages, then each `[gui] apps` entry not among them, by name only. The lock
// format (the original's) pins system_packages alone and lists apps apart
// (resolved_apps, part of the env id); a locked build refuses a lock whose packages
// differ from system_packages, so apps cannot be pinned there and are installed at the
// version the image's package manager picks.
func withApps(pinned []schema.ResolvedPackage, names, apps []string) ([]schema.ResolvedPackage, []string) {
	pkgs := append([]schema.ResolvedPackage{}, pinned...)
	all := append([]string{}, names...)
	have := make(map[string]bool, len(pinned)+len(names))
	for _, p := range pinned {
		have[p.Name] = true
	}
	for _, n := range names {
		have[n] = true
	}
	for _, a := range apps {
		if !have[a] {
			have[a] = true
			pkgs = append(pkgs, schema.ResolvedPackage{Name: a})
			all = append(all, a)
		}
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
