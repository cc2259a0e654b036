package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/karapace/karapace/bench"
)

// tree makes, once, the data tree of -size bytes (three big files holding 60% of it and
// 16 KiB files in 64 directories for the rest, incompressible content) and its tarball.
func (h *harness) tree() (dir, tarball string, err error) {
	dir = filepath.Join(h.cfg.work, "tree")
	tarball = filepath.Join(h.cfg.work, "tree.tar")
	if _, err := os.Stat(tarball); err == nil {
		return dir, tarball, nil
	}
	h.log.Info("writing the data tree", "bytes", h.cfg.size)
	rng := rand.NewChaCha8([32]byte{'k', 'a', 'r', 'a'})
	write := func(p string, n int64) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		buf := make([]byte, 1<<20)
		for n > 0 {
			k := min(n, int64(len(buf)))
			_, _ = rng.Read(buf[:k])
			if _, err := w.Write(buf[:k]); err != nil {
				f.Close()
				return err
			}
			n -= k
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	big := h.cfg.size * 6 / 10 / 3
	for i := 0; i < 3; i++ {
		if err := write(filepath.Join(dir, "big", fmt.Sprintf("blob-%d.bin", i)), big); err != nil {
			return "", "", err
		}
	}
	const small = 16 << 10
	for i := int64(0); i < (h.cfg.size-3*big)/small; i++ {
		if err := write(filepath.Join(dir, "small", fmt.Sprintf("d%02d", i%64), fmt.Sprintf("f%06d", i)), small); err != nil {
			return "", "", err
		}
	}
	if out, err := exec.CommandContext(h.ctx, "tar", "-C", dir, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("tar: %v: %s", err, lastLines(out))
	}
	return dir, tarball, nil
}

// dataSection: commit, restore and verify-store of the tree against tar and b3sum.
func (h *harness) dataSection() error {
	if _, err := exec.LookPath("b3sum"); err != nil {
		return fmt.Errorf("b3sum is not installed (apt-get install b3sum): the peer pipeline needs it")
	}
	tree, tarball, err := h.tree()
	if err != nil {
		return err
	}
	st, err := os.Stat(tarball)
	if err != nil {
		return err
	}
	bytes := st.Size()
	store := filepath.Join(h.cfg.work, "store-data")
	ns, err := h.manifest("ns.toml", h.tarball, "namespace")
	if err != nil {
		return err
	}
	id, err := h.buildEnv(store, ns, "data", nil)
	if err != nil {
		return err
	}
	upper := filepath.Join(store, "env", id, "upper")
	if out, err := exec.CommandContext(h.ctx, "cp", "-a", tree+"/.", upper+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("filling upper: %v: %s", err, lastLines(out))
	}
	tarB3 := func() *exec.Cmd {
		return exec.CommandContext(h.ctx, "sh", "-c", `tar -C "$1" -cf - . | b3sum >/dev/null`, "sh", upper)
	}
	// The first commit writes every object; later ones find them stored.
	var snap string
	commitCold := bench.Contender{Name: "karapace commit (first)", Cmd: func() *exec.Cmd { return h.kp(store, nil, "--json", "commit", "data") }}
	c := commitCold.Cmd()
	out := &capture{}
	c.Stdout = out
	s, err := bench.Run(h.ctx, c)
	if err != nil {
		return err
	}
	h.noteRSS([]string{"commit"}, s)
	var res struct {
		SnapshotHash string `json:"snapshot_hash"`
	}
	if err := json.Unmarshal(out.b, &res); err != nil || len(res.SnapshotHash) != 64 {
		return fmt.Errorf("commit output %q", out.b)
	}
	snap = res.SnapshotHash
	peer, err := bench.Run(h.ctx, tarB3())
	if err != nil {
		return err
	}
	h.rep.Rows = append(h.rep.Rows,
		row{Section: "commit", Name: "tar -c | b3sum (first)", Runs: 1, MedianMS: ms(peer.Wall), GiBps: bench.Throughput(bytes, peer.Wall)},
		row{Section: "commit", Name: "karapace commit (first)", Runs: 1, MedianMS: ms(s.Wall), Ratio: bench.Ratio(s.Wall, peer.Wall),
			GiBps: bench.Throughput(bytes, s.Wall), RSSMiB: mib(s.MaxRSS), Note: "writes every object"})
	rounds := h.rounds(3, 2)
	med := h.compare("commit", rounds, "tar -c | b3sum", bytes, []bench.Contender{
		{Name: "tar -c | b3sum", Cmd: tarB3},
		{Name: "karapace commit", Cmd: func() *exec.Cmd { return h.kp(store, nil, "commit", "data") }},
	})
	h.goal("commit >= 0.8x of tar | b3sum", med["karapace commit"] != 0 && bench.Ratio(med["tar -c | b3sum"], med["karapace commit"]) >= 0.8,
		"karapace commit %.0f ms (first: %.0f ms), tar -c | b3sum %.0f ms: karapace at %.2fx the pipeline's speed",
		ms(med["karapace commit"]), ms(s.Wall), ms(med["tar -c | b3sum"]), bench.Ratio(med["tar -c | b3sum"], med["karapace commit"]))
	h.goal("a commit of the tree under 256 MiB RSS", s.MaxRSS > 0 && s.MaxRSS < 256<<20, "first commit of %.0f MiB: peak RSS %.0f MiB", mib(bytes), mib(s.MaxRSS))

	dest := filepath.Join(h.cfg.work, "untar")
	med = h.compare("restore", rounds, "tar -x", bytes, []bench.Contender{
		{Name: "tar -x", Before: func() error {
			if err := os.RemoveAll(dest); err != nil {
				return err
			}
			return os.Mkdir(dest, 0o755)
		}, Cmd: func() *exec.Cmd { return exec.CommandContext(h.ctx, "tar", "-C", dest, "-xf", tarball) }},
		{Name: "karapace restore", Cmd: func() *exec.Cmd { return h.kp(store, nil, "restore", "data", snap) }},
	})
	h.goal("restore >= 0.8x of tar -x", med["karapace restore"] != 0 && bench.Ratio(med["tar -x"], med["karapace restore"]) >= 0.8,
		"karapace restore %.0f ms, tar -x %.0f ms: karapace at %.2fx the peer's speed",
		ms(med["karapace restore"]), ms(med["tar -x"]), bench.Ratio(med["tar -x"], med["karapace restore"]))
	_ = os.RemoveAll(dest)

	// verify-store hashes every object, layer and metadata record: b3sum of the same files.
	var storeBytes int64
	_ = filepath.Walk(filepath.Join(store, "store"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			storeBytes += fi.Size()
		}
		return nil
	})
	// A verify takes a fraction of a second: more rounds than the commit and restore
	// above, for a median that the machine's noise moves less, after the restore's
	// writes have gone to disk (untimed), so that their writeback lands on neither side.
	_ = exec.CommandContext(h.ctx, "sync").Run()
	med = h.compare("verify-store", h.rounds(11, 3), "b3sum of the store", storeBytes, []bench.Contender{
		{Name: "b3sum of the store", Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "sh", "-c", `find "$1/store/objects" "$1/store/layers" "$1/store/metadata" -type f -print0 | xargs -0 b3sum >/dev/null`, "sh", store)
		}},
		{Name: "karapace verify-store", Cmd: func() *exec.Cmd { return h.kp(store, nil, "verify-store") }},
	})
	h.goal("verify-store >= 0.8x of b3sum", med["karapace verify-store"] != 0 && bench.Ratio(med["b3sum of the store"], med["karapace verify-store"]) >= 0.8,
		"karapace verify-store %.0f ms, b3sum %.0f ms over %.0f MiB: karapace at %.2fx the peer's speed",
		ms(med["karapace verify-store"]), ms(med["b3sum of the store"]), mib(storeBytes), bench.Ratio(med["b3sum of the store"], med["karapace verify-store"]))
	return nil
}

// capture keeps a command's stdout (small JSON documents).
type capture struct{ b []byte }

func (c *capture) Write(p []byte) (int, error) {
	if len(c.b) < 1<<20 {
		c.b = append(c.b, p...)
	}
	return len(p), nil
}
