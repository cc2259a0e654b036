package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/karapace/karapace/schema"
)

// MigrationResult reports a migration that happened.
type MigrationResult struct {
	FromVersion          uint32 `json:"from_version"`
	ToVersion            uint32 `json:"to_version"`
	EnvironmentsMigrated int    `json:"environments_migrated"`
	BackupPath           string `json:"backup_path"`
}

// Migrate brings the store at root to FormatVersion, as the original's migrate_store:
// nothing to do (nil result) on a current store; ErrVersionMismatch for a newer one;
// otherwise back up the version file (store/version.backup.<UTC time>), add the keys
// version 1 lacked (name, policy_layer, checksum) to every metadata record, and write
// the new version file last. Unlike the original, records are rewritten in field order
// with a fresh checksum (not with sorted keys and "checksum": null), dot files are
// left alone, and a directory without any store is initialized (nil result).
// Unparsable records are logged, skipped and left untouched. Take the exclusive store
// lock first.
func Migrate(ctx context.Context, root string, now func() time.Time, log *slog.Logger) (*MigrationResult, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := NewLayout(root)
	b, err := os.ReadFile(l.VersionFile())
	if errors.Is(err, fs.ErrNotExist) {
		empty, eerr := storeIsEmpty(l)
		if eerr != nil {
			return nil, wrap("migrate", eerr)
		}
		if !empty {
			return nil, wrap("migrate", fmt.Errorf("no version file at %s, but the store holds data: %w", l.VersionFile(), err))
		}
		return nil, l.Initialize(ctx)
	}
	if err != nil {
		return nil, wrap("migrate", err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, wrap("migrate", fmt.Errorf("%w: version file: %v", ErrCorrupt, err))
	}
	var found uint32
	if f, ok := generic["format_version"].(float64); ok && f >= 0 && f == float64(uint64(f)) {
		found = uint32(uint64(f))
	}
	if found == FormatVersion {
		return nil, nil
	}
	if found > FormatVersion {
		return nil, &VersionMismatchError{Expected: FormatVersion, Found: uint64(found)}
	}
	backup := l.VersionFile() + ".backup." + now().UTC().Format("20060102T150405Z")
	if err := writeFileAtomic(backup, b); err != nil {
		return nil, wrap("migrate: back up version file", err)
	}
	res, err := migrateRecords(ctx, l, found, backup, log)
	if err != nil {
		// The version file still holds the old version, so the backup says nothing new;
		// the records already rewritten are valid in both formats and the next run
		// finishes them.
		_ = os.Remove(backup)
		return nil, err
	}
	return res, nil
}

// migrateRecords rewrites every metadata record and then the version file.
func migrateRecords(ctx context.Context, l Layout, found uint32, backup string, log *slog.Logger) (*MigrationResult, error) {
	res := &MigrationResult{FromVersion: found, ToVersion: FormatVersion, BackupPath: backup}
	des, err := os.ReadDir(l.MetadataDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, wrap("migrate", err)
	}
	for _, de := range des {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := de.Name()
		if name == "" || name[0] == '.' || !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(l.MetadataDir(), name)
		changed, err := migrateRecord(p)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				log.Warn(fmt.Sprintf("migration: skipping metadata '%s': %v", name, err))
				continue
			}
			return nil, wrap("migrate "+name, err)
		}
		if changed {
			res.EnvironmentsMigrated++
		}
	}
	if err := l.mkdir(l.StoreDir()); err != nil {
		return nil, wrap("migrate", err)
	}
	if err := l.writeVersion(); err != nil {
		return nil, err
	}
	return res, nil
}

// migrateRecord adds the version 2 keys to one record and rewrites it with a fresh
// checksum when any was missing (or the checksum was null).
func migrateRecord(p string) (bool, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil || keys == nil {
		return false, fmt.Errorf("%w: not a JSON object", ErrCorrupt)
	}
	_, hasName := keys["name"]
	_, hasPolicy := keys["policy_layer"]
	sum, hasSum := keys["checksum"]
	if hasName && hasPolicy && hasSum && string(sum) != "null" {
		return false, nil
	}
	if err := requireKeys(b, "env_id", "short_id", "state", "manifest_hash", "base_layer",
		"dependency_layers", "created_at", "updated_at", "ref_count"); err != nil {
		return false, err
	}
	var w metadataJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if w.DependencyLayers == nil {
		w.DependencyLayers = []string{}
	}
	c, err := checksumOf(w)
	if err != nil {
		return false, err
	}
	s := c.String()
	w.Checksum = &s
	out, err := schema.MarshalPretty(w)
	if err != nil {
		return false, err
	}
	return true, writeFileAtomic(p, out)
}

// storeIsEmpty reports whether root holds no store data (missing, or only empty
// directories).
func storeIsEmpty(l Layout) (bool, error) {
	empty := true
	err := filepath.WalkDir(l.StoreDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && d.Name() != ".lock" && d.Name() != ".lock.holder" {
			empty = false
			return fs.SkipAll
		}
		return nil
	})
	return empty, err
}
