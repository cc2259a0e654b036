package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/image"
)

type imagesOptions struct {
	names []string
	force bool
	json  bool
}

// imageEntry is one cached image in `images --json`.
type imageEntry struct {
	Key         string   `json:"key"`
	Name        string   `json:"name"`
	Source      string   `json:"source"`
	Digest      string   `json:"digest"`
	Size        int64    `json:"size"`
	Compression string   `json:"compression"`
	Arch        string   `json:"arch,omitempty"`
	FetchedAt   string   `json:"fetched_at"`
	UsedBy      []string `json:"used_by"`
}

// imageRefreshed is one image in `images refresh --json`.
type imageRefreshed struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Status string `json:"status"` // "downloaded" or "up_to_date"
	Digest string `json:"digest"`
	Source string `json:"source"`
}

// imagesRemoved is the `images remove --json` shape.
type imagesRemoved struct {
	Removed []string `json:"removed"`
}

func newImagesCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List, refresh and remove the cached base images",
		Long: "Base images are downloaded once into the store's image cache and shared by every\n" +
			"environment built on them. Without a subcommand, list them. An image is named as in\n" +
			"[base] image (an alias such as debian/bookworm, a URL or a tarball path) or by its\n" +
			"cache key (the KEY column).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagesList(cmd.Context(), g, imagesOptions{json: g.json})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the cached base images and the environments built on them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagesList(cmd.Context(), g, imagesOptions{json: g.json})
		},
	}
	var refresh imagesOptions
	refreshCmd := &cobra.Command{
		Use:   "refresh [image...]",
		Short: "Download the newest build of images (default: every cached image)",
		Long: "Ask the image server for the newest build of each image and download it when it is\n" +
			"not the cached one (an image named by URL is downloaded again; one not cached yet is\n" +
			"downloaded). Environments keep running on the image they were built on only until it\n" +
			"is replaced, so an image in use needs --force; rebuild those environments afterwards.",
		RunE: func(cmd *cobra.Command, args []string) error {
			refresh.names, refresh.json = args, g.json
			return runImagesRefresh(cmd.Context(), g, refresh)
		},
	}
	refreshCmd.Flags().BoolVarP(&refresh.force, "force", "f", false, "refresh an image that environments are built on")
	var remove imagesOptions
	removeCmd := &cobra.Command{
		Use:     "remove <image>...",
		Aliases: []string{"rm"},
		Short:   "Remove cached images (the next build downloads them again)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			remove.names, remove.json = args, g.json
			return runImagesRemove(cmd.Context(), g, remove)
		},
	}
	removeCmd.Flags().BoolVarP(&remove.force, "force", "f", false, "remove an image that environments are built on")
	cmd.AddCommand(list, refreshCmd, removeCmd)
	return cmd
}

// imageCache opens the store's image cache and tells, per cache key, which
// environments are built on it (their names, else short ids).
func imageCache(ctx context.Context, g *globals) (*image.Cache, map[string][]string, error) {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	users := map[string][]string{}
	envs, err := e.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i := range envs {
		env := &envs[i]
		if env.State == core.Defined {
			continue
		}
		m, err := e.Manifest(ctx, env.EnvID)
		if err != nil {
			continue
		}
		ref, err := image.Resolve(m.BaseImage)
		if err != nil {
			continue
		}
		who := env.DisplayName()
		if who == "" {
			who = env.ShortID
		}
		users[ref.Key] = append(users[ref.Key], who)
	}
	return image.NewCache(e.Root(), image.WithLogger(g.log)), users, nil
}

func runImagesList(ctx context.Context, g *globals, opts imagesOptions) error {
	c, users, err := imageCache(ctx, g)
	if err != nil {
		return err
	}
	keys, err := c.Keys()
	if err != nil {
		return err
	}
	entries := make([]imageEntry, 0, len(keys))
	for _, k := range keys {
		rec, err := c.Record(k)
		if err != nil {
			g.log.Warn("unreadable image record", "key", k, "err", err)
			continue
		}
		used := users[k]
		sort.Strings(used)
		entries = append(entries, imageEntry{Key: k, Name: rec.Name, Source: rec.Source, Digest: rec.Digest.String(),
			Size: rec.Size, Compression: string(rec.Compression), Arch: rec.Arch,
			FetchedAt: rec.FetchedAt.UTC().Format(time.RFC3339), UsedBy: append([]string{}, used...)})
	}
	if opts.json {
		return writeJSON(g.stdout, entries)
	}
	return printImages(g.stdout, entries)
}

func printImages(w io.Writer, entries []imageEntry) error {
	if len(entries) == 0 {
		return printf(w, "no cached images (a build downloads its base image)\n")
	}
	rows := [][]string{{"KEY", "IMAGE", "SIZE", "FETCHED", "USED BY"}}
	for _, e := range entries {
		fetched := e.FetchedAt
		if t, err := time.Parse(time.RFC3339, e.FetchedAt); err == nil {
			fetched = t.Format("2006-01-02 15:04")
		}
		used := strings.Join(e.UsedBy, ", ")
		if used == "" {
			used = "-"
		}
		rows = append(rows, []string{e.Key, e.Name, formatBytes(e.Size), fetched, used})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		line := ""
		for i, c := range r {
			if i < len(r)-1 {
				c = padRight(c, widths[i]+2)
			}
			line += c
		}
		if err := printf(w, "%s\n", line); err != nil {
			return err
		}
	}
	return nil
}

// imageRef resolves a command-line image: a name as in [base] image, or a cache key.
// A cached image found by its key is named as its record names it.
func imageRef(c *image.Cache, name string) (image.Ref, error) {
	if rec, err := c.Record(name); err == nil {
		if ref, err := image.Resolve(rec.Name); err == nil && ref.Key == name {
			return ref, nil
		}
	}
	ref, err := image.Resolve(name)
	if err != nil {
		return image.Ref{}, fmt.Errorf("%w (or name a cache key from 'karapace images')", err)
	}
	return ref, nil
}

// inUse refuses to change an image that environments are built on, unless forced.
func inUse(key, verb string, users map[string][]string, force bool) error {
	if force || len(users[key]) == 0 {
		return nil
	}
	return fmt.Errorf("image %s is the base of %s (%s): %s it changes what they run on; pass --force, then 'karapace rebuild' them",
		key, plural(len(users[key]), "environment"), strings.Join(users[key], ", "), verb)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return itoa(n) + " " + noun + "s"
}

func runImagesRefresh(ctx context.Context, g *globals, opts imagesOptions) error {
	c, users, err := imageCache(ctx, g)
	if err != nil {
		return err
	}
	names := opts.names
	if len(names) == 0 {
		if names, err = c.Keys(); err != nil {
			return err
		}
	}
	var refs []image.Ref
	for _, n := range names {
		ref, err := imageRef(c, n)
		if err != nil {
			return err
		}
		if ref.Kind == image.KindLocal && len(opts.names) == 0 {
			continue // a local tarball has no newer build; a build re-reads it anyway
		}
		if err := inUse(ref.Key, "refreshing", users, opts.force); err != nil {
			return err
		}
		refs = append(refs, ref)
	}
	results := make([]imageRefreshed, 0, len(refs))
	for _, ref := range refs {
		sp := g.spinner("refreshing "+ref.Display+"...", opts.json)
		img, err := c.Ensure(ctx, ref, image.EnsureOptions{Refresh: true, Progress: func(e image.Event) {
			switch {
			case e.Message != "":
				sp.Progress(e.Message)
			case e.Phase == image.PhaseDownload:
				sp.Transfer(e.Done, e.Total)
			}
		}})
		if err != nil {
			sp.Fail("refresh of " + ref.Display + " failed")
			return err
		}
		r := imageRefreshed{Key: img.Key, Name: ref.Display, Status: "downloaded", Digest: img.Digest.String(), Source: img.Record.Source}
		if img.Cached {
			r.Status = "up_to_date"
			sp.Success(ref.Display + " is up to date")
		} else {
			sp.Success(ref.Display + " downloaded")
		}
		results = append(results, r)
	}
	if opts.json {
		return writeJSON(g.stdout, results)
	}
	if len(results) == 0 {
		return printf(g.stdout, "no cached images to refresh\n")
	}
	for _, r := range results {
		what := "downloaded " + r.Source
		if r.Status == "up_to_date" {
			what = "up to date"
		}
		if err := printf(g.stdout, "%s: %s\n", r.Key, what); err != nil {
			return err
		}
	}
	return nil
}

func runImagesRemove(ctx context.Context, g *globals, opts imagesOptions) error {
	c, users, err := imageCache(ctx, g)
	if err != nil {
		return err
	}
	var keys []string
	for _, n := range opts.names {
		ref, err := imageRef(c, n)
		if err != nil {
			return err
		}
		if _, err := c.Record(ref.Key); errors.Is(err, image.ErrImageNotFound) {
			return fmt.Errorf("image %s is not cached (see 'karapace images')", n)
		}
		if err := inUse(ref.Key, "removing", users, opts.force); err != nil {
			return err
		}
		keys = append(keys, ref.Key)
	}
	for _, k := range keys {
		if err := c.Remove(ctx, k); err != nil {
			return err
		}
	}
	if opts.json {
		return writeJSON(g.stdout, imagesRemoved{Removed: keys})
	}
	for _, k := range keys {
		if err := printf(g.stdout, "removed image %s\n", k); err != nil {
			return err
		}
	}
	return nil
}
