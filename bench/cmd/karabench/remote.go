package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/karapace/karapace/bench"
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

// remoteSection: push and pull of an environment whose base layer is the data tree,
// to karapace-server on loopback, against curl to a plain Go file server.
func (h *harness) remoteSection() error {
	_, tarball, err := h.tree()
	if err != nil {
		return err
	}
	st, err := os.Stat(tarball)
	if err != nil {
		return err
	}
	store := filepath.Join(h.cfg.work, "store-push")
	m, err := h.manifest("big.toml", tarball, "namespace")
	if err != nil {
		return err
	}
	if _, err := h.buildEnv(store, m, "big", nil); err != nil {
		return fmt.Errorf("building an environment on the tree image: %w", err)
	}
	var (
		srv     *server
		round   int
		pullDir = filepath.Join(h.cfg.work, "store-pull")
	)
	h.cleanups = append(h.cleanups, func() { srv.stop() })
	fileURL, stopFS, err := fileServer(h.ctx, h.cfg.work)
	if err != nil {
		return err
	}
	defer stopFS()
	defer os.Remove(filepath.Join(h.cfg.work, "blob"))
	download := filepath.Join(h.cfg.work, "download")
	defer os.Remove(download)
	med := h.compare("push/pull", h.rounds(3, 2), "", st.Size(), []bench.Contender{
		{Name: "karapace push", Before: func() error {
			// A fresh server each round, so that every push sends every byte.
			srv.stop()
			round++
			data := filepath.Join(h.cfg.work, "server-data")
			if err := os.RemoveAll(data); err != nil {
				return err
			}
			var err error
			srv, err = h.startServer(data)
			return err
		}, Cmd: func() *exec.Cmd { return h.kp(store, nil, "push", "big", "--remote", srv.url, "--tag", "big@v1") }},
		{Name: "curl upload", Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "curl", "-sS", "-f", "-T", tarball, fileURL)
		}},
		{Name: "karapace pull", Before: func() error { return os.RemoveAll(pullDir) },
			Cmd: func() *exec.Cmd { return h.kp(pullDir, nil, "pull", "big@v1", "--remote", srv.url) }},
		{Name: "curl download", Before: func() error { return os.RemoveAll(download) }, Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "curl", "-sS", "-f", "-o", download, fileURL)
		}},
	})
	for i := range h.rep.Rows {
		r := &h.rep.Rows[i]
		if r.Section != "push/pull" {
			continue
		}
		switch r.Name {
		case "karapace push":
			r.Ratio = bench.Ratio(med["karapace push"], med["curl upload"])
			r.Note = "ratio against curl upload"
		case "karapace pull":
			r.Ratio = bench.Ratio(med["karapace pull"], med["curl download"])
			r.Note = "ratio against curl download"
		}
	}
	_ = os.RemoveAll(pullDir)
	return nil
}
