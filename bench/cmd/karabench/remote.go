package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/karapace/karapace/bench"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// server is one karapace-server process on loopback.
type server struct {
	cmd *exec.Cmd
	url string
}

func (h *harness) startServer(dataDir string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := exec.Command(filepath.Join(h.cfg.bin, "karapace-server"), "--port", strconv.Itoa(port), "--data-dir", dataDir)
	if err := c.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: c, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.url + "/health")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("karapace-server did not answer on %s: %w", s.url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// fileServer is the plain peer: PUT stores the body in a file, GET serves it back.
func fileServer(ctx context.Context, dir string) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(dir, "blob")
		switch r.Method {
		case http.MethodPut:
			f, err := os.Create(p)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			_, err = io.Copy(bw, r.Body)
			if err == nil {
				err = bw.Flush()
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			http.ServeFile(w, r, p)
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
		}
	})
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "karabench: file server:", err)
		}
	}()
	return "http://" + l.Addr().String() + "/blob", func() { _ = srv.Close() }, nil
}

// bigEnv builds an environment on the busybox image, then gives it a base layer holding
// the data tree, as if its package installs had written the tree into its writable
// layer: the tree packed by the store's own packer into one object (what a build
// captures), recorded with the store's own encoders. Push must upload that object and
// pull must download it and unpack it as the environment's writable layer. The local
// environment's upper dir stays empty: push reads only the store. It returns the
// object's path: the same bytes the curl peers move.
func (h *harness) bigEnv(root, tree string) (string, error) {
	m, err := h.manifest("big.toml", h.tarball, "namespace")
	if err != nil {
		return "", err
	}
	hexID, err := h.buildEnv(root, m, "big", nil)
	if err != nil {
		return "", fmt.Errorf("building an environment on the busybox image: %w", err)
	}
	id, err := schema.ParseEnvID(hexID)
	if err != nil {
		return "", err
	}
	st, err := store.Open(h.ctx, root, store.Options{})
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(store.Pack(h.ctx, tree, pw, h.log)) }()
	obj, err := st.Objects.Put(h.ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		return "", fmt.Errorf("packing the tree: %w", err)
	}
	layer, err := st.Layers.Put(h.ctx, store.Layer{
		Hash: obj, Kind: store.KindBase, ObjectRefs: []schema.Digest{obj}, ReadOnly: true, TarHash: obj,
	})
	if err != nil {
		return "", err
	}
	rec, err := st.Envs.Get(h.ctx, id)
	if err != nil {
		return "", err
	}
	rec.BaseLayer = layer
	if err := st.Envs.Put(h.ctx, rec); err != nil {
		return "", err
	}
	return st.Objects.Path(obj), nil
}

// pullPhases reads the phase timings `karapace -v pull` logs (core.Engine.Pull).
func pullPhases(stderr string) (transfer, materialize time.Duration, err error) {
	for _, l := range strings.Split(stderr, "\n") {
		var d *time.Duration
		switch {
		case strings.Contains(l, `msg="pull: blobs transferred"`):
			d = &transfer
		case strings.Contains(l, `msg="pull: environment materialized"`):
			d = &materialize
		default:
			continue
		}
		_, v, ok := strings.Cut(l, " took=")
		if !ok {
			return 0, 0, fmt.Errorf("pull log line without took=: %q", l)
		}
		v, _, _ = strings.Cut(v, " ")
		if *d, err = time.ParseDuration(v); err != nil {
			return 0, 0, fmt.Errorf("pull log line %q: %w", l, err)
		}
	}
	if transfer == 0 || materialize == 0 {
		return 0, 0, fmt.Errorf("karapace -v pull logged no phase timings:\n%s", stderr)
	}
	return transfer, materialize, nil
}

// remoteSection: push and pull of an environment whose base layer holds the data tree
// (one object), to karapace-server on loopback, against curl moving the same object file
// to a plain Go file server (which fsyncs what it receives), sync(1) of the download
// (pull fsyncs too) and tar -x unpacking it (pull's other half: it unpacks the base
// layer as the environment's writable layer).
func (h *harness) remoteSection() error {
	tree, _, err := h.tree()
	if err != nil {
		return err
	}
	storeRoot := filepath.Join(h.cfg.work, "store-push")
	object, err := h.bigEnv(storeRoot, tree)
	if err != nil {
		return err
	}
	st, err := os.Stat(object)
	if err != nil {
		return err
	}
	var (
		srv      *server
		pullDir  = filepath.Join(h.cfg.work, "store-pull")
		unpacked = filepath.Join(h.cfg.work, "unpacked")
		download = filepath.Join(h.cfg.work, "download")
		pullLogs []*bytes.Buffer
	)
	h.cleanups = append(h.cleanups, func() { srv.stop() })
	fileURL, stopFS, err := fileServer(h.ctx, h.cfg.work)
	if err != nil {
		return err
	}
	defer stopFS()
	// Every contender runs from the same state whatever the order of a round (the
	// harness shuffles it): a server holding big@v1, the object at the file server and
	// a downloaded copy, all set up untimed here.
	if srv, err = h.startServer(filepath.Join(h.cfg.work, "server-data")); err != nil {
		return err
	}
	if _, err := h.kpOut(storeRoot, nil, "push", "big", "--remote", srv.url, "--tag", "big@v1"); err != nil {
		return fmt.Errorf("the first push: %w", err)
	}
	blob := filepath.Join(h.cfg.work, "blob")
	for _, p := range []string{blob, download} {
		if err := ensureCopy(object, p); err != nil {
			return err
		}
	}
	defer os.Remove(blob)
	defer os.Remove(download)
	defer os.RemoveAll(unpacked)
	defer os.RemoveAll(pullDir)
	cs := []bench.Contender{
		{Name: "karapace push", Before: func() error {
			// A fresh server each round, so that every push sends every byte.
			srv.stop()
			data := filepath.Join(h.cfg.work, "server-data")
			if err := os.RemoveAll(data); err != nil {
				return err
			}
			var err error
			srv, err = h.startServer(data)
			return err
		}, Cmd: func() *exec.Cmd { return h.kp(storeRoot, nil, "push", "big", "--remote", srv.url, "--tag", "big@v1") }},
		{Name: "curl upload", Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "curl", "-sS", "-f", "-T", object, fileURL)
		}},
		// The same PUT push makes, by curl, so that the server's work (blake3 of every
		// byte, fsync) is on both sides: what is left is the client's cost.
		{Name: "curl upload to karapace-server", Before: func() error {
			err := os.Remove(filepath.Join(h.cfg.work, "server-data", "blobs", "Object", filepath.Base(object)))
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
			return err
		}, Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "curl", "-sS", "-f", "-o", "/dev/null", "-H", "X-Karapace-Protocol: 1",
				"-T", object, srv.url+"/objects/"+filepath.Base(object))
		}},
		{Name: "karapace pull", Before: func() error {
			// One log per run (Before runs once per run; Cmd also for the RSS note).
			pullLogs = append(pullLogs, new(bytes.Buffer))
			return os.RemoveAll(pullDir)
		}, Cmd: func() *exec.Cmd {
			c := h.kp(pullDir, nil, "-v", "pull", "big@v1", "--remote", srv.url)
			if len(pullLogs) > 0 {
				c.Stderr = pullLogs[len(pullLogs)-1]
			}
			return c
		}},
		{Name: "curl download", Before: func() error { return os.RemoveAll(download) }, Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "curl", "-sS", "-f", "-o", download, fileURL)
		}},
		// Pull fsyncs what it receives; curl does not: sync(1) of the download is the
		// durable half of the peer's transfer. It flushes a copy just written (untimed),
		// as the download is right after curl: a copy left by an earlier round was
		// written back long ago, and its sync cost nothing.
		{Name: "sync", Before: func() error {
			if err := os.Remove(download); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return ensureCopy(object, download)
		}, Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "sync", download)
		}},
		{Name: "tar -x", Before: func() error {
			if err := ensureCopy(object, download); err != nil {
				return err
			}
			if err := os.RemoveAll(unpacked); err != nil {
				return err
			}
			return os.Mkdir(unpacked, 0o755)
		}, Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "tar", "-C", unpacked, "-xf", download)
		}},
	}
	med := h.compare("push/pull", h.rounds(3, 2), "", st.Size(), cs)
	if _, ok := med["karapace pull"]; !ok && len(pullLogs) > 0 {
		h.log.Warn("karapace pull failed", "stderr", lastLines(pullLogs[len(pullLogs)-1].Bytes()))
	}
	// The phases of each timed pull (the first run is the untimed warm-up).
	var transfers, materializes []time.Duration
	for i, b := range pullLogs {
		if i == 0 {
			continue
		}
		t, m, err := pullPhases(b.String())
		if err != nil {
			h.skip("push/pull / karapace pull phases: " + err.Error())
			transfers = nil
			break
		}
		transfers, materializes = append(transfers, t), append(materializes, m)
	}
	var phases []row
	if len(transfers) > 0 {
		t, m := bench.Median(transfers), bench.Median(materializes)
		phases = []row{
			{Section: "push/pull", Name: "karapace pull: transfer", Runs: len(transfers), MedianMS: ms(t),
				Ratio: bench.Ratio(t, med["curl download"]+med["sync"]), GiBps: bench.Throughput(st.Size(), t),
				Note: "download, verify, fsync, stage, commit (from -v); ratio against curl download + sync"},
			{Section: "push/pull", Name: "karapace pull: materialize", Runs: len(materializes), MedianMS: ms(m),
				Ratio: bench.Ratio(m, med["tar -x"]), GiBps: bench.Throughput(st.Size(), m),
				Note: "image, unpack of the base layer (from -v); ratio against tar -x"},
		}
	}
	var rows []row
	for _, r := range h.rep.Rows {
		if r.Section == "push/pull" {
			switch r.Name {
			case "karapace push":
				r.Ratio = bench.Ratio(med["karapace push"], med["curl upload"])
				r.Note = fmt.Sprintf("ratio against curl upload; %.2fx curl upload to karapace-server",
					bench.Ratio(med["karapace push"], med["curl upload to karapace-server"]))
			case "karapace pull":
				r.Ratio = bench.Ratio(med["karapace pull"], med["curl download"]+med["sync"]+med["tar -x"])
				r.Note = "ratio against curl download + sync + tar -x"
			case "sync":
				r.Note = "of the download: flushes it to disk"
			case "tar -x":
				r.Note = "of the download"
			}
		}
		rows = append(rows, r)
		if r.Section == "push/pull" && r.Name == "karapace pull" {
			rows = append(rows, phases...)
		}
	}
	h.rep.Rows = rows
	return nil
}

// ensureCopy makes dst a copy of src unless it exists (never a hard link: the file
// server's PUT truncates its file in place).
func ensureCopy(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
