package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// A project is a directory with a karapace.toml. Its environment is the one its
// karapace.lock names; a build moves the project's name along as edits of the
// manifest change the id, and enter/exec without a name find it from the directory.

// ProjectNameFile, next to a manifest, holds the name its environment takes when a
// build is given none and the project has no named environment yet: one line, written
// by `karapace new <name>`. Like the name of a distrobox or toolbx container, it is the
// handle `enter` and `exec` take; unlike theirs it survives edits of the manifest,
// since each build carries the name over to the environment the edit made.
const ProjectNameFile = "karapace.name"

// ReadProjectName returns the name in dir's ProjectNameFile, "" when there is none.
func ReadProjectName(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProjectNameFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ProjectNameFile, err)
	}
	name := strings.TrimSpace(string(b))
	if err := store.ValidateName(name); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, ProjectNameFile), err)
	}
	return name, nil
}

// freeName is the name a build's claim must find free: want, unless the environment
// the project built before holds it (buildName then moves it).
func (e *Engine) freeName(ctx context.Context, want string, prev *schema.Lock) string {
	if want != "" && prev != nil {
		if p, err := e.st.metaGet(ctx, prev.EnvID); err == nil && p.DisplayName() == want {
			return ""
		}
	}
	return want
}

// buildName decides the name the built environment id gets, and the environment it
// is taken from (nil when none), under the store lock. "" keeps what the record has.
//
//   - An explicit name must be free, or held by this environment or by the one this
//     project built before (prev, the lock being replaced): then it moves. It never
//     renames an environment that has another name (another project with the same
//     manifest built it), unless rename (Rebuild's --name).
//   - Without one, a new id takes the name of the environment the project built
//     before (build after an edit), else the project's ProjectNameFile. An existing
//     environment keeps its own name.
func (e *Engine) buildName(ctx context.Context, want string, rename bool, id schema.EnvID, old *Env, prev *schema.Lock, dir string) (string, *Env, error) {
	var before *Env // the environment the project built before, when another one
	if prev != nil && prev.EnvID != id {
		if p, err := e.st.metaGet(ctx, prev.EnvID); err == nil {
			before = p
		}
	}
	held := old != nil && old.Name != nil
	fromFile := false
	if want == "" {
		if held {
			return "", nil, nil
		}
		if before != nil && before.Name != nil {
			return *before.Name, before, nil
		}
		name, err := ReadProjectName(dir)
		if err != nil || name == "" {
			return "", nil, err
		}
		want, fromFile = name, true
	}
	if held && *old.Name != want && !rename {
		return "", nil, fmt.Errorf("environment %s is already named '%s' (the same manifest, resolved, built it before); "+
			"enter it as '%s', or rename it with 'karapace rename %s %s'", id.Short(), *old.Name, *old.Name, *old.Name, want)
	}
	if before != nil && before.Name != nil && *before.Name == want {
		return want, before, nil
	}
	if err := e.st.checkNameFree(ctx, want, id); err != nil {
		if fromFile {
			return "", nil, fmt.Errorf("%s asks for a name in use (edit it or pass --name): %w", filepath.Join(dir, ProjectNameFile), err)
		}
		return "", nil, err
	}
	return want, nil, nil
}

// ManifestFile is the manifest's name in a project directory.
const ManifestFile = "karapace.toml"

// Project is a project directory found from a working directory.
type Project struct {
	// Manifest is the manifest file's absolute path.
	Manifest string
	// EnvID is its environment.
	EnvID schema.EnvID
	// Drift, when not nil, says the manifest no longer asks for what the lock holds
	// (it was edited since the last build): the environment is that build's.
	Drift error
}

// FindProject finds the manifest in dir or the nearest parent and returns the
// environment its lock names. No manifest, or one whose lock names no environment of
// this store, is ErrNotFound, saying what to do. (Not the ProjectNameFile's name: a
// copied project would reach the original's environment.)
func (e *Engine) FindProject(ctx context.Context, dir string) (*Project, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	manifest := ""
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, ManifestFile)); err == nil && fi.Mode().IsRegular() {
			manifest = filepath.Join(d, ManifestFile)
			break
		}
		if filepath.Dir(d) == d {
			return nil, fmt.Errorf("%w: no %s in %s or its parents; name an environment (karapace list shows them)", ErrNotFound, ManifestFile, dir)
		}
	}
	p := &Project{Manifest: manifest}
	if l, err := schema.ReadLock(lockPath(manifest)); err == nil {
		if _, err := e.get(ctx, l.EnvID); err == nil {
			p.EnvID = l.EnvID
			if n, written, _, err := loadProject(manifest); err != nil {
				p.Drift = err
			} else if l.HasRelativeMounts() {
				p.Drift = l.VerifyManifestIntent(written)
			} else {
				p.Drift = l.VerifyManifestIntent(n)
			}
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %s has not been built (karapace build)", ErrNotFound, manifest)
}
