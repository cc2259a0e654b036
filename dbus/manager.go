package dbus

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

// manager is the exported object: its exported methods are exactly the interface's
// methods (godbus exports every exported method of the value). Each call runs on its
// own goroutine (godbus dispatches calls concurrently), so a build that runs or waits
// for the store lock never holds up other calls.
type manager struct {
	s *Service
}

// envStatus is the JSON of ListEnvironments and GetEnvironmentStatus.
type envStatus struct {
	EnvID   string `json:"env_id"`
	ShortID string `json:"short_id"`
	Name    string `json:"name,omitempty"`
	State   string `json:"state"`
}

func statusOf(e *core.Env) envStatus {
	return envStatus{EnvID: e.EnvID.String(), ShortID: e.ShortID, Name: e.DisplayName(), State: e.State.String()}
}

// buildReply is the JSON of BuildEnvironment; BuildNamedEnvironment always has a name.
type buildReply struct {
	EnvID   string `json:"env_id"`
	ShortID string `json:"short_id"`
	Name    string `json:"name,omitempty"`
	State   string `json:"state"`
}

type destroyReply struct {
	Destroyed string `json:"destroyed"`
}

type runReply struct {
	Entered  string `json:"entered"`
	PID      int    `json:"pid"`
	Terminal string `json:"terminal"`
}

type renameReply struct {
	EnvID string `json:"env_id"`
	Name  string `json:"name"`
}

type presetReply struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// gcReply keeps the original's fields and adds the orphan lists, so a dry run says
// what it would remove.
type gcReply struct {
	DryRun          bool     `json:"dry_run"`
	RemovedEnvs     int      `json:"removed_envs"`
	RemovedLayers   int      `json:"removed_layers"`
	RemovedObjects  int      `json:"removed_objects"`
	OrphanedEnvs    []string `json:"orphaned_envs"`
	OrphanedLayers  []string `json:"orphaned_layers"`
	OrphanedObjects []string `json:"orphaned_objects"`
}

// verifyReply keeps the original's fields (failed is a count) and adds the failures.
type verifyReply struct {
	Checked  int                  `json:"checked"`
	Passed   int                  `json:"passed"`
	Failed   int                  `json:"failed"`
	Failures []core.VerifyFailure `json:"failures"`
}

// call runs one method: it keeps the service busy meanwhile, encodes the reply and
// turns an error into its D-Bus error (logged).
func (m *manager) call(msg godbus.Message, method string, fn func(ctx context.Context) (any, error)) (string, *godbus.Error) {
	end := m.s.idle.begin()
	defer end()
	// godbus converts arguments of the wrong type where Go can (an int32 becomes a
	// one-rune string): refuse any call whose signature is not the method's.
	if got, want := signatureOf(msg), inSignature(method); got != want {
		return "", godbus.NewError("org.freedesktop.DBus.Error.InvalidArgs",
			[]any{fmt.Sprintf("%s takes (%s), got (%s)", method, want, got)})
	}
	start := time.Now()
	v, err := fn(m.s.ctx)
	if err == nil {
		var s string
		if str, ok := v.(string); ok {
			s = str
		} else {
			b, jerr := json.Marshal(v)
			if jerr != nil {
				err = fmt.Errorf("encode reply: %w", jerr)
			}
			s = string(b)
		}
		if err == nil {
			m.s.log.Debug("call", "method", method, "took", time.Since(start))
			return s, nil
		}
	}
	m.s.log.Error(method+" failed", "err", err)
	return "", dbusError(err)
}

func (m *manager) ListEnvironments(msg godbus.Message) (string, *godbus.Error) {
	return m.call(msg, "ListEnvironments", func(ctx context.Context) (any, error) {
		envs, err := m.s.engine.List(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]envStatus, 0, len(envs))
		for i := range envs {
			out = append(out, statusOf(&envs[i]))
		}
		return out, nil
	})
}

func (m *manager) GetEnvironmentStatus(msg godbus.Message, ref string) (string, *godbus.Error) {
	return m.call(msg, "GetEnvironmentStatus", func(ctx context.Context) (any, error) {
		e, err := m.s.inspect(ctx, ref)
		if err != nil {
			return nil, err
		}
		return statusOf(e), nil
	})
}

func (m *manager) GetEnvironmentHash(msg godbus.Message, ref string) (string, *godbus.Error) {
	return m.call(msg, "GetEnvironmentHash", func(ctx context.Context) (any, error) {
		e, err := m.s.inspect(ctx, ref)
		if err != nil {
			return nil, err
		}
		return e.EnvID.String(), nil
	})
}

func (m *manager) BuildEnvironment(msg godbus.Message, manifestPath string) (string, *godbus.Error) {
	return m.call(msg, "BuildEnvironment", func(ctx context.Context) (any, error) {
		return m.s.build(ctx, manifestPath, "")
	})
}

func (m *manager) BuildNamedEnvironment(msg godbus.Message, manifestPath, name string) (string, *godbus.Error) {
	return m.call(msg, "BuildNamedEnvironment", func(ctx context.Context) (any, error) {
		if name == "" {
			return nil, fmt.Errorf("%w: empty environment name", ErrInvalidArgument)
		}
		return m.s.build(ctx, manifestPath, name)
	})
}

func (m *manager) DestroyEnvironment(msg godbus.Message, ref string) (string, *godbus.Error) {
	return m.call(msg, "DestroyEnvironment", func(ctx context.Context) (any, error) {
		defer m.s.operation()()
		id, err := m.s.engine.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := m.s.engine.Destroy(ctx, id); err != nil {
			return nil, err
		}
		m.s.announce(id.String(), stateDestroyed)
		return destroyReply{Destroyed: id.String()}, nil
	})
}

func (m *manager) RunEnvironment(msg godbus.Message, ref string) (string, *godbus.Error) {
	return m.call(msg, "RunEnvironment", func(ctx context.Context) (any, error) {
		e, err := m.s.inspect(ctx, ref)
		if err != nil {
			return nil, err
		}
		if e.State != core.Built && e.State != core.Running {
			return nil, &core.TransitionError{From: e.State.String(), To: core.Running.String()}
		}
		pid, term, err := m.s.openTerminal(e.EnvID)
		if err != nil {
			return nil, err
		}
		return runReply{Entered: e.EnvID.String(), PID: pid, Terminal: term}, nil
	})
}

func (m *manager) RenameEnvironment(msg godbus.Message, ref, newName string) (string, *godbus.Error) {
	return m.call(msg, "RenameEnvironment", func(ctx context.Context) (any, error) {
		defer m.s.operation()()
		id, err := m.s.engine.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := m.s.engine.Rename(ctx, id, newName); err != nil {
			return nil, err
		}
		return renameReply{EnvID: id.String(), Name: newName}, nil
	})
}

func (m *manager) ListPresets(msg godbus.Message) (string, *godbus.Error) {
	return m.call(msg, "ListPresets", func(context.Context) (any, error) {
		ps := schema.Presets()
		out := make([]presetReply, 0, len(ps))
		for _, p := range ps {
			out = append(out, presetReply{Name: p.Name, Description: p.Description})
		}
		return out, nil
	})
}

func (m *manager) GarbageCollect(msg godbus.Message, dryRun bool) (string, *godbus.Error) {
	return m.call(msg, "GarbageCollect", func(ctx context.Context) (any, error) {
		defer m.s.operation()()
		r, err := m.s.engine.GC(ctx, dryRun)
		if err != nil {
			return nil, err
		}
		if !dryRun {
			for _, id := range r.OrphanedEnvs {
				m.s.announce(id, stateDestroyed)
			}
		}
		return gcReply{
			DryRun: r.DryRun, RemovedEnvs: r.RemovedEnvs, RemovedLayers: r.RemovedLayers,
			RemovedObjects: r.RemovedObjects, OrphanedEnvs: nonNil(r.OrphanedEnvs),
			OrphanedLayers: nonNil(r.OrphanedLayers), OrphanedObjects: nonNil(r.OrphanedObjects),
		}, nil
	})
}

func (m *manager) VerifyStore(msg godbus.Message) (string, *godbus.Error) {
	return m.call(msg, "VerifyStore", func(ctx context.Context) (any, error) {
		r, err := m.s.engine.Verify(ctx)
		if err != nil {
			return nil, err
		}
		failures := r.Failed
		if failures == nil {
			failures = []core.VerifyFailure{}
		}
		return verifyReply{Checked: r.Checked, Passed: r.Passed, Failed: len(r.Failed), Failures: failures}, nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// inspect resolves a reference (ambiguous prefixes are an error, not the first
// match) and reads the environment.
func (s *Service) inspect(ctx context.Context, ref string) (*core.Env, error) {
	id, err := s.engine.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.engine.Inspect(ctx, id)
}

// build builds a manifest, naming the environment in the same step when name is set
// (so a bad or taken name fails the build before anything is built), then announces
// the new state and sends a desktop notification either way.
func (s *Service) build(ctx context.Context, manifestPath, name string) (any, error) {
	if !filepath.IsAbs(manifestPath) {
		return nil, fmt.Errorf("%w: the manifest path must be absolute, got %q", ErrInvalidArgument, manifestPath)
	}
	defer s.operation()()
	res, err := s.engine.Build(ctx, manifestPath, core.BuildOptions{Name: name})
	if err != nil {
		s.notify("Build Failed", err.Error())
		return nil, err
	}
	s.announce(res.EnvID.String(), core.Built.String())
	if res.Name != "" {
		s.notify("Build Complete", fmt.Sprintf("Environment '%s' (%s) built", res.Name, res.ShortID))
	} else {
		s.notify("Build Complete", fmt.Sprintf("Environment %s built", res.ShortID))
	}
	return buildReply{EnvID: res.EnvID.String(), ShortID: res.ShortID, Name: res.Name, State: core.Built.String()}, nil
}

// signatureOf is the signature of a call's arguments.
func signatureOf(msg godbus.Message) string {
	if v, ok := msg.Headers[godbus.FieldSignature]; ok {
		if sig, ok := v.Value().(godbus.Signature); ok {
			return sig.String()
		}
	}
	return ""
}

// inSignature is the signature of a method's arguments, from the method table.
func inSignature(method string) string {
	for _, m := range methods {
		if m.name == method {
			var sig strings.Builder
			for _, a := range m.in {
				sig.WriteString(a[1])
			}
			return sig.String()
		}
	}
	return "?"
}
