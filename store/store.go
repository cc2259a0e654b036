package store

import (
	"context"
	"log/slog"
	"time"
)

// Options configure a Store. Zero values are fine.
type Options struct {
	// Logger receives warnings (skipped files, corrupt entries). Default: discard.
	Logger *slog.Logger
	// Now is the clock for timestamps and op ids. Default: time.Now.
	Now func() time.Time
	// RemoveTree, when set, removes trees the caller cannot remove alone (see
	// Layout.WithRemover).
	RemoveTree func(path string) error
}

// Store bundles the parts of one store. Building it does no I/O; Open also initializes
// (or version-checks) the directory.
type Store struct {
	Layout  Layout
	Objects *Objects
	Layers  *Layers
	Envs    *Envs
	WAL     *WAL

	log *slog.Logger
	now func() time.Time
}

// New returns the store at root without touching the disk.
func New(root string, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := NewLayout(root).WithRemover(opts.RemoveTree)
	return &Store{
		Layout:  l,
		Objects: NewObjects(l),
		Layers:  NewLayers(l),
		Envs:    NewEnvs(l, opts.Now, opts.Logger),
		WAL:     NewWAL(l, opts.Now, opts.Logger),
		log:     opts.Logger,
		now:     opts.Now,
	}
}

// Open returns the store at root, creating its directories and version file if needed
// and failing with ErrVersionMismatch on a store of another format version.
func Open(ctx context.Context, root string, opts Options) (*Store, error) {
	s := New(root, opts)
	if err := s.Layout.Initialize(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
