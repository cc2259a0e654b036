package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Synth describes a synthesized store: Envs environment records (built, ref_count 1)
// sharing one base layer that references the first Objects-Orphans objects, plus Orphans
// objects nothing references (what gc deletes).
type Synth struct {
	Envs    int
	Objects int
	Orphans int
}

// Synthesize writes s into the store at root with the store package's encoders and
// layout (so every record verifies). It writes the files directly, without the
// per-file fsync and the name-uniqueness scan of the store's Put methods (the names it
// makes are unique), and syncs the file system once at the end: a 100k store takes
// seconds, not hours. Distinct contents come from a counter, so two runs give the same
// store.
func Synthesize(ctx context.Context, root string, s Synth) error {
	st, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		return err
	}
	if s.Orphans > s.Objects {
		return fmt.Errorf("synthesize: %d orphans out of %d objects", s.Orphans, s.Objects)
	}
	digests := make([]schema.Digest, s.Objects)
	if err := parallel(ctx, s.Objects, func(i int) error {
		var b [40]byte
		copy(b[:], "karabench object ")
		binary.BigEndian.PutUint64(b[32:], uint64(i))
		d := schema.Sum(b[:])
		digests[i] = d
		return os.WriteFile(st.Objects.Path(d), b[:], 0o644)
	}); err != nil {
		return fmt.Errorf("synthesize objects: %w", err)
	}
	tarHash := schema.Sum([]byte("karabench base layer"))
	base, err := st.Layers.Put(ctx, store.Layer{
		Hash: tarHash, Kind: store.KindBase, ObjectRefs: digests[:s.Objects-s.Orphans],
		ReadOnly: true, TarHash: tarHash,
	})
	if err != nil {
		return fmt.Errorf("synthesize layer: %w", err)
	}
	// Every record names one stored manifest object, as verify-store requires.
	manifest := (&schema.Normalized{ManifestVersion: 1, BaseImage: "karabench", RuntimeBackend: "mock"}).CanonicalJSON()
	manifestHash := schema.Sum(manifest)
	if err := os.WriteFile(st.Objects.Path(manifestHash), manifest, 0o644); err != nil {
		return fmt.Errorf("synthesize the manifest object: %w", err)
	}
	now := st.Envs.Now()
	if err := parallel(ctx, s.Envs, func(i int) error {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		id := schema.Sum(append([]byte("karabench env "), b[:]...))
		rec, err := store.Metadata{
			EnvID: id, ShortID: id.Short(), Name: fmt.Sprintf("env-%d", i), State: store.StateBuilt,
			ManifestHash: manifestHash, BaseLayer: base, CreatedAt: now, UpdatedAt: now, RefCount: 1,
		}.Encode()
		if err == nil {
			err = os.WriteFile(st.Envs.Path(id), rec, 0o644)
		}
		if err != nil {
			return fmt.Errorf("synthesize environment %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return err
	}
	syscall.Sync()
	return nil
}

// parallel calls fn for 0..n-1 on a few goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(int) error) error {
	const workers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
