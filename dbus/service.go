package dbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
)

// The service's names on the bus.
const (
	BusName    = "org.karapace.Manager1"
	Interface  = "org.karapace.Manager1"
	ObjectPath = godbus.ObjectPath("/org/karapace/Manager1")
	APIVersion = uint32(1)
)

// Defaults.
const (
	DefaultIdleTimeout   = 30 * time.Second
	DefaultLockTimeout   = 20 * time.Second // under the 25 s default reply timeout of D-Bus clients
	DefaultWatchInterval = time.Second
	shutdownGrace        = 10 * time.Second
)

// ErrNameTaken: another process owns the bus name.
var ErrNameTaken = errors.New("bus name already owned")

// Options configure a Service.
type Options struct {
	// StoreRoot is the store directory. Required.
	StoreRoot string
	// Backends is the backend registry handed to the Engine.
	Backends map[string]func() runtime.Backend
	// RemoveTree is handed to the Engine (core.Options.RemoveTree).
	RemoveTree func(ctx context.Context, path string) error
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
	// IdleTimeout ends Serve after this long without calls or running work; 0 never.
	IdleTimeout time.Duration
	// LockTimeout bounds a call's wait for the store lock (then the call fails with
	// StoreLocked); 0 is DefaultLockTimeout, negative waits as long as it takes.
	LockTimeout time.Duration
	// WatchInterval is how often the store is polled for state changes made by others
	// (the CLI, a terminal session); 0 is DefaultWatchInterval, negative never.
	WatchInterval time.Duration
	// KarapaceBin is the karapace binary RunEnvironment starts; "" looks next to this
	// program's executable, then in PATH.
	KarapaceBin string
	// Environ is the environment RunEnvironment reads ($TERMINAL, $PATH) and gives the
	// terminal; nil is os.Environ().
	Environ []string
}

// Service is org.karapace.Manager1 on one store.
type Service struct {
	opts   Options
	log    *slog.Logger
	engine *core.Engine
	idle   *idleTimer

	// Set by Serve.
	ctx   context.Context
	conn  *godbus.Conn
	props *prop.Properties

	unanswered atomic.Int64 // calls received and not yet replied to

	opsMu sync.Mutex
	ops   uint32 // mutating operations running (the ActiveOperations property)

	statesMu sync.Mutex
	states   map[string]string // last state seen or announced, by env id
	gen      uint64            // count of announcements by calls
}

// New returns a Service on opts.StoreRoot.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.StoreRoot == "" {
		return nil, fmt.Errorf("%w: no store root", ErrInvalidArgument)
	}
	root, err := filepath.Abs(opts.StoreRoot)
	if err != nil {
		return nil, fmt.Errorf("store root: %w", err)
	}
	opts.StoreRoot = root
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	} else if opts.LockTimeout < 0 {
		opts.LockTimeout = 0
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = DefaultWatchInterval
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	eng, err := core.New(ctx, core.Options{
		StoreRoot:   opts.StoreRoot,
		Backends:    opts.Backends,
		Logger:      opts.Logger,
		LockTimeout: opts.LockTimeout,
		RemoveTree:  opts.RemoveTree,
		OnLockWait: func(w core.LockWait) {
			opts.Logger.Info(w.String())
		},
	})
	if err != nil {
		return nil, err
	}
	return &Service{
		opts: opts, log: opts.Logger, engine: eng,
		idle:   newIdleTimer(opts.IdleTimeout),
		states: map[string]string{},
	}, nil
}

// Serve connects to the bus at address, takes the name BusName and serves until the
// idle timeout passes or ctx ends (both return nil) or the bus goes away (an error).
// When it returns, the name is released and running calls have been answered (once
// ctx ended, they are cancelled and have shutdownGrace to answer). Call it once.
func (s *Service) Serve(ctx context.Context, address string) error {
	if address == "" {
		return fmt.Errorf("%w: no bus address", ErrInvalidArgument)
	}
	// Every incoming call, to any interface of any path (Properties, Introspectable,
	// Peer included), resets the idle timer.
	// Calls owed a reply are counted from arrival until their reply leaves, so that
	// shutdown never closes the connection under a reply.
	conn, err := godbus.Connect(address,
		godbus.WithIncomingInterceptor(func(m *godbus.Message) {
			if m.Type == godbus.TypeMethodCall {
				if m.Flags&godbus.FlagNoReplyExpected == 0 {
					s.unanswered.Add(1)
				}
				s.idle.touch()
			}
		}),
		godbus.WithOutgoingInterceptor(func(m *godbus.Message) {
			if m.Type == godbus.TypeMethodReply || m.Type == godbus.TypeError {
				s.unanswered.Add(-1)
			}
		}))
	if err != nil {
		return fmt.Errorf("connect to the bus at %s: %w", address, err)
	}
	defer conn.Close()

	workCtx, cancelWork := context.WithCancel(ctx)
	defer cancelWork()
	s.ctx, s.conn = workCtx, conn
	if err := s.export(conn); err != nil {
		return err
	}
	reply, err := conn.RequestName(BusName, godbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", BusName, err)
	}
	if reply != godbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("%w: %s", ErrNameTaken, BusName)
	}
	s.log.Info("karapace-dbus service started on session bus", "name", BusName, "unique", conn.Names()[0])
	if s.opts.IdleTimeout > 0 {
		s.log.Info("idle timeout: " + s.opts.IdleTimeout.String())
	}
	s.snapshotStates(workCtx)
	if s.opts.WatchInterval > 0 {
		go s.watch(workCtx)
	}

	// Serve also ends when the bus goes away: nobody could reach us any more.
	waitCtx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	go func() {
		select {
		case <-conn.Context().Done():
			stopWait()
		case <-waitCtx.Done():
		}
	}()
	err = s.idle.wait(waitCtx)
	var lost error
	switch {
	case err == nil:
		s.log.Info("idle timeout reached, shutting down")
	case ctx.Err() == nil:
		lost = errors.New("lost the connection to the bus")
		err = lost
		s.log.Error("shutting down: " + lost.Error())
	default:
		s.log.Info("shutting down", "reason", err)
	}
	// Give the name up first: a call arriving from now on starts a new instance (bus
	// activation) instead of reaching one that is leaving.
	if _, rerr := conn.ReleaseName(BusName); rerr != nil {
		s.log.Warn("release bus name", "err", rerr)
	}
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err != nil {
		cancelWork() // cancelled from outside: running builds roll back
	}
	s.idle.drain(grace)
	for s.unanswered.Load() > 0 && grace.Err() == nil && conn.Context().Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	// The last reply passed the outgoing interceptor; let its write start (Close waits
	// for writes in progress, not for ones about to begin).
	time.Sleep(20 * time.Millisecond)
	return lost
}

// export puts the object, its properties and the introspection data on conn.
func (s *Service) export(conn *godbus.Conn) error {
	m := &manager{s: s}
	if err := conn.Export(m, ObjectPath, Interface); err != nil {
		return fmt.Errorf("export %s: %w", Interface, err)
	}
	props, err := prop.Export(conn, ObjectPath, prop.Map{Interface: {
		PropAPIVersion:       {Value: APIVersion, Emit: prop.EmitConst},
		PropStoreRoot:        {Value: s.opts.StoreRoot, Emit: prop.EmitConst},
		PropActiveOperations: {Value: uint32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		return fmt.Errorf("export properties: %w", err)
	}
	s.props = props
	if err := conn.Export(introspect.NewIntrospectable(managerNode()), ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("export introspection: %w", err)
	}
	for path, node := range parentNodes() {
		if err := conn.Export(introspect.NewIntrospectable(node), godbus.ObjectPath(path), "org.freedesktop.DBus.Introspectable"); err != nil {
			return fmt.Errorf("export introspection of %s: %w", path, err)
		}
	}
	return nil
}

// operation marks a mutating operation as running (ActiveOperations) until the
// returned function is called.
func (s *Service) operation() (end func()) {
	s.setOps(+1)
	var once sync.Once
	return func() { once.Do(func() { s.setOps(-1) }) }
}

func (s *Service) setOps(delta int) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if delta < 0 {
		s.ops--
	} else {
		s.ops++
	}
	if s.props != nil {
		s.props.SetMust(Interface, PropActiveOperations, s.ops)
	}
}

// announce emits EnvironmentChanged(id, state) unless that state was already
// announced for id. Calls announce their own changes with it as soon as they are done.
func (s *Service) announce(id, state string) {
	s.statesMu.Lock()
	s.gen++ // a watcher poll that overlapped this is stale
	changed := s.record(id, state)
	s.statesMu.Unlock()
	if changed {
		s.emitChanged(id, state)
	}
}

// record notes id's state and reports whether it changed. The caller holds statesMu.
func (s *Service) record(id, state string) bool {
	if old, ok := s.states[id]; state == stateDestroyed {
		delete(s.states, id)
		return ok
	} else if old == state {
		return false
	}
	s.states[id] = state
	return true
}

func (s *Service) emitChanged(id, state string) {
	s.log.Debug("environment changed", "env", id, "state", state)
	if err := s.conn.Emit(ObjectPath, Interface+"."+SignalEnvironmentChanged, id, state); err != nil {
		s.log.Warn("emit "+SignalEnvironmentChanged, "err", err)
	}
}

// stateDestroyed is the state EnvironmentChanged announces for a removed environment.
const stateDestroyed = "destroyed"

// snapshotStates records the store's environments and states without announcing them.
func (s *Service) snapshotStates(ctx context.Context) {
	envs, err := s.engine.List(ctx)
	if err != nil {
		s.log.Debug("list environments", "err", err)
		return
	}
	s.statesMu.Lock()
	defer s.statesMu.Unlock()
	for _, e := range envs {
		s.states[e.EnvID.String()] = e.State.String()
	}
}

// watch polls the store and announces state changes nobody announced yet: those made
// by the CLI, the TUI or a terminal session that RunEnvironment opened.
func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.poll(ctx)
	}
}

// poll compares one listing of the store with the states known. A listing that
// overlapped an announcement by a call is dropped: it may predate that call's change.
func (s *Service) poll(ctx context.Context) {
	s.statesMu.Lock()
	gen := s.gen
	s.statesMu.Unlock()
	envs, err := s.engine.List(ctx)
	if err != nil {
		return
	}
	type change struct{ id, state string }
	var changes []change
	s.statesMu.Lock()
	if s.gen != gen {
		s.statesMu.Unlock()
		return
	}
	seen := make(map[string]bool, len(envs))
	for _, e := range envs {
		id := e.EnvID.String()
		seen[id] = true
		if s.record(id, e.State.String()) {
			changes = append(changes, change{id, e.State.String()})
		}
	}
	for id := range s.states {
		if !seen[id] && s.record(id, stateDestroyed) {
			changes = append(changes, change{id, stateDestroyed})
		}
	}
	s.statesMu.Unlock()
	for _, c := range changes {
		s.emitChanged(c.id, c.state)
	}
}

// getenv reads the service's environment (Options.Environ).
func (s *Service) getenv(key string) string {
	for i := len(s.opts.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.opts.Environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// SessionBusAddress finds the session bus: $DBUS_SESSION_BUS_ADDRESS, else the
// address of the bus that activated us ($DBUS_STARTER_ADDRESS), else
// $XDG_RUNTIME_DIR/bus. It never launches a bus.
func SessionBusAddress(getenv func(string) string) (string, error) {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a, nil
	}
	if a := getenv("DBUS_STARTER_ADDRESS"); a != "" && getenv("DBUS_STARTER_BUS_TYPE") != "system" {
		return a, nil
	}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix:path=" + godbus.EscapeBusAddressValue(p), nil
		}
	}
	return "", errors.New("no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist")
}

// StorePath is the store the service uses: $KARAPACE_STORE, else
// ~/.local/share/karapace.
func StorePath(getenv func(string) string) (string, error) {
	if p := getenv("KARAPACE_STORE"); p != "" {
		return p, nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("neither KARAPACE_STORE nor HOME is set")
	}
	return filepath.Join(home, ".local", "share", "karapace"), nil
}

// IdleTimeout reads KARAPACE_DBUS_IDLE_TIMEOUT: seconds (fractions allowed), 0 for
// never; unset is DefaultIdleTimeout.
func IdleTimeout(getenv func(string) string) (time.Duration, error) {
	v := getenv("KARAPACE_DBUS_IDLE_TIMEOUT")
	if v == "" {
		return DefaultIdleTimeout, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1e9) { // NaN fails both
		return 0, fmt.Errorf("KARAPACE_DBUS_IDLE_TIMEOUT=%q: want a number of seconds >= 0", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
