package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/karapace/karapace/bench"
)

const (
	podmanImage     = "localhost/karabench-busybox"
	distroboxName   = "karabench-distrobox"
	toolboxName     = "karabench-toolbox"
	podmanCreateCtr = "karabench-create"
)

// podmanFlags are what podman needs as root on this kind of machine (NOTES.md): crun
// refuses hybrid cgroups, and the default ulimits are refused.
var podmanFlags = []string{"--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}

// buildEnv builds manifest under name and returns the environment id.
func (h *harness) buildEnv(store, manifest, name string, env []string) (string, error) {
	out, err := h.kpOut(store, env, "--json", "build", manifest, "--name", name)
	if err != nil {
		return "", err
	}
	var res struct {
		EnvID string `json:"env_id"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.EnvID) != 64 {
		return "", fmt.Errorf("build %s: unexpected output %q", name, out)
	}
	return res.EnvID, nil
}

// podman imports the busybox rootfs as an image once; "" when podman is unusable.
func (h *harness) podman() (string, error) {
	p, err := exec.LookPath("podman")
	if err != nil {
		return "", fmt.Errorf("not installed")
	}
	if out, err := exec.CommandContext(h.ctx, p, "image", "exists", podmanImage).CombinedOutput(); err == nil {
		return p, nil
	} else if len(out) > 0 && !strings.Contains(string(out), "exit status 1") {
		h.log.Debug("podman image exists", "out", string(out))
	}
	if out, err := exec.CommandContext(h.ctx, p, "import", h.tarball, podmanImage).CombinedOutput(); err != nil {
		return "", fmt.Errorf("podman import: %v: %s", err, lastLines(out))
	}
	h.cleanups = append(h.cleanups, func() {
		_ = exec.Command(p, "rmi", "-f", podmanImage).Run()
	})
	return p, nil
}

func (h *harness) execSection() error {
	store := filepath.Join(h.cfg.work, "store-exec")
	ns, err := h.manifest("ns.toml", h.tarball, "namespace")
	if err != nil {
		return err
	}
	nsID, err := h.buildEnv(store, ns, "ns", nil)
	if err != nil {
		return fmt.Errorf("building the namespace environment: %w", err)
	}
	truePath := "/bin/true"
	// One exec through the engine leaves the fast path's plan; the next must take the
	// fast path (KARAPACE_FASTEXEC=require fails otherwise), or the row would not measure
	// what users get.
	if _, err := h.kpOut(store, nil, "exec", "ns", "--", truePath); err != nil {
		return fmt.Errorf("exec in the namespace environment: %w", err)
	}
	if _, err := h.kpOut(store, []string{"KARAPACE_FASTEXEC=require"}, "exec", "ns", "--", truePath); err != nil {
		return fmt.Errorf("the exec fast path was not taken: %w", err)
	}
	// That session's namespaces stay with the environment's keeper, which the timed
	// execs join (what a user gets from the second exec on); the row without a keeper
	// builds and tears down a root at every exec.
	if err := waitKeeper(filepath.Join(store, "env", nsID)); err != nil {
		return err
	}
	h.cleanups = append(h.cleanups, func() { _ = h.kp(store, nil, "stop", "ns").Run() }) // ends the keeper
	cs := []bench.Contender{
		{Name: "floor: unshare+chroot", Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "chroot", h.rootfs, truePath)
		}},
		{Name: "karapace namespace", Cmd: func() *exec.Cmd { return h.kp(store, nil, "exec", "ns", "--", truePath) }},
		{Name: "karapace namespace, no keeper", Cmd: func() *exec.Cmd {
			return h.kp(store, []string{"KARAPACE_KEEP_ALIVE=0"}, "exec", "ns", "--", truePath)
		}},
		{Name: "karapace namespace, full path", Cmd: func() *exec.Cmd {
			return h.kp(store, []string{"KARAPACE_FASTEXEC=off"}, "exec", "ns", "--", truePath)
		}},
	}
	oci, err := h.manifest("oci.toml", h.tarball, "oci")
	if err != nil {
		return err
	}
	ociBuilt := false
	for _, rt := range []string{"crun", "runc"} {
		if _, err := exec.LookPath(rt); err != nil {
			h.skip(fmt.Sprintf("exec / karapace oci/%s: %s not installed", rt, rt))
			continue
		}
		env := []string{"KARAPACE_OCI_RUNTIME=" + rt}
		if !ociBuilt {
			if _, err := h.buildEnv(store, oci, "oci", env); err != nil {
				h.skip(fmt.Sprintf("exec / karapace oci: build failed: %v", err))
				break
			}
			ociBuilt = true
		}
		cs = append(cs, bench.Contender{Name: "karapace oci/" + rt, Cmd: func() *exec.Cmd { return h.kp(store, env, "exec", "oci", "--", truePath) }})
	}
	peers := []string{}
	if _, err := exec.LookPath("bwrap"); err == nil {
		peers = append(peers, "bwrap")
		cs = append(cs, bench.Contender{Name: "bwrap", Cmd: func() *exec.Cmd {
			return exec.CommandContext(h.ctx, "bwrap", "--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
				"--bind", h.rootfs, "/", "--proc", "/proc", "--dev", "/dev", truePath)
		}})
	} else {
		h.skip("exec / bwrap: not installed")
	}
	// Container managers leave work running after they return (podman's cleanup of a
	// --rm container, conmon, the rootless pause process), which would land on whichever
	// contender runs next. They are timed in a second interleaved group, with the floor
	// again as the reference, so that work does not skew the launchers' medians.
	floorC := cs[0]
	managers := []bench.Contender{floorC}
	if p, err := h.podman(); err != nil {
		h.skip("exec / podman run --rm: " + err.Error())
	} else {
		peers = append(peers, "podman run --rm")
		managers = append(managers, bench.Contender{Name: "podman run --rm", Cmd: func() *exec.Cmd {
			args := append([]string{"run", "--rm", "--network", "none"}, podmanFlags...)
			return exec.CommandContext(h.ctx, p, append(args, podmanImage, truePath)...)
		}})
	}
	// distrobox and toolbox run as an unprivileged user, on rootless podman and a
	// Debian image (see peerUser).
	for _, c := range h.userPeers() {
		peers = append(peers, c.Name)
		managers = append(managers, c)
	}
	med := h.compare("exec -- true", h.rounds(21, 7), "floor: unshare+chroot", 0, cs)
	floor, ours := med["floor: unshare+chroot"], med["karapace namespace"]
	if len(managers) > 1 {
		// The second group's ratios are against its own floor; "faster" compares each
		// manager's ratio with karapace's.
		mm := h.compare("exec -- true (container managers)", h.rounds(21, 7), "floor: unshare+chroot", 0, managers)
		if f2 := mm["floor: unshare+chroot"]; f2 != 0 && floor != 0 {
			for name, m := range mm {
				if name != "floor: unshare+chroot" {
					med[name] = time.Duration(float64(m) * float64(floor) / float64(f2))
				}
			}
		}
	}
	if floor == 0 || ours == 0 {
		h.goal("exec <= 1.5x the floor", false, "not measured")
		return nil
	}
	ratio := bench.Ratio(ours, floor)
	h.goal("exec <= 1.5x the floor", ratio <= 1.5, "karapace namespace %.2f ms = %.2fx unshare+chroot %.2f ms", ms(ours), ratio, ms(floor))
	var slower []string
	for _, p := range peers {
		if m, ok := med[p]; ok && m <= ours {
			slower = append(slower, fmt.Sprintf("%s %.2f ms", p, ms(m)))
		}
	}
	measured := 0
	for _, p := range peers {
		if med[p] != 0 {
			measured++
		}
	}
	h.goal("exec faster than every peer", len(slower) == 0 && measured > 0, "%d peers measured; faster than karapace (%.2f ms): %s", measured, ms(ours), orNone(slower))
	return nil
}

// userPeers sets up distrobox and toolbox as the unprivileged peer user and returns a
// contender for each that works; for each that does not, it reports exactly why.
func (h *harness) userPeers() []bench.Contender {
	var tools []string
	for _, t := range []string{"distrobox", "toolbox"} {
		if _, err := exec.LookPath(t); err != nil {
			h.skip(fmt.Sprintf("exec / %s: not installed", t))
			continue
		}
		tools = append(tools, t)
	}
	if len(tools) == 0 {
		return nil
	}
	fail := func(err error) []bench.Contender {
		for _, t := range tools {
			h.skip(fmt.Sprintf("exec / %s: %v", t, err))
		}
		return nil
	}
	if _, err := exec.LookPath("podman"); err != nil {
		return fail(fmt.Errorf("podman is not installed"))
	}
	u, err := h.newPeerUser()
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Minute)
	defer cancel()
	if err := u.image(ctx); err != nil {
		return fail(err)
	}
	var cs []bench.Contender
	for _, t := range tools {
		setup := h.distrobox
		if t == "toolbox" {
			setup = h.toolbox
		}
		c, err := setup(ctx, u)
		if err != nil {
			h.skip(fmt.Sprintf("exec / %s: %v", t, err))
			continue
		}
		cs = append(cs, c)
	}
	return cs
}

// distrobox creates a distrobox container on the Debian image as the peer user (it
// refuses uid 0) and returns the contender entering it.
func (h *harness) distrobox(ctx context.Context, u *peerUser) (bench.Contender, error) {
	p, err := exec.LookPath("distrobox")
	if err != nil {
		return bench.Contender{}, fmt.Errorf("not installed")
	}
	// --no-entry: no desktop entry (its icon download needs the internet).
	if err := u.run(ctx, p, "create", "--yes", "--no-entry", "--name", distroboxName, "--image", peerImage); err != nil {
		return bench.Contender{}, fmt.Errorf("distrobox %s as %s: %w", distroboxVersion(p), u.name, err)
	}
	// The first enter runs distrobox's init inside the container (it sets up the user,
	// mounts and hooks); only later enters are what a user waits for.
	enter := []string{"enter", distroboxName, "--", "true"}
	if err := u.run(ctx, p, enter...); err != nil {
		return bench.Contender{}, fmt.Errorf("distrobox %s as %s: first enter: %w", distroboxVersion(p), u.name, err)
	}
	return bench.Contender{Name: "distrobox enter", Cmd: func() *exec.Cmd { return u.command(h.ctx, p, enter...) }}, nil
}

// toolbox creates a toolbox container on the Debian image as the peer user, with a
// private D-Bus system bus (toolbox refuses to create a container without one), and
// returns the contender running true in it.
func (h *harness) toolbox(ctx context.Context, u *peerUser) (bench.Contender, error) {
	p, err := exec.LookPath("toolbox")
	if err != nil {
		return bench.Contender{}, fmt.Errorf("not installed")
	}
	if err := u.systemBus(ctx); err != nil {
		return bench.Contender{}, err
	}
	if err := u.run(ctx, p, "create", "--assumeyes", "--image", peerImage, toolboxName); err != nil {
		return bench.Contender{}, fmt.Errorf("as %s: %w", u.name, err)
	}
	run := []string{"run", "--container", toolboxName, "true"}
	if err := u.run(ctx, p, run...); err != nil {
		return bench.Contender{}, fmt.Errorf("as %s: first run: %w", u.name, err)
	}
	return bench.Contender{Name: "toolbox run", Cmd: func() *exec.Cmd { return u.command(h.ctx, p, run...) }}, nil
}

// buildSection: a warm build (image cached, no packages) against podman create.
func (h *harness) buildSection() error {
	store := filepath.Join(h.cfg.work, "store-build")
	ns, err := h.manifest("ns.toml", h.tarball, "namespace")
	if err != nil {
		return err
	}
	if _, err := h.buildEnv(store, ns, "wb", nil); err != nil { // caches the image
		return err
	}
	cs := []bench.Contender{{
		Name:   "karapace build",
		Before: func() error { _, err := h.kpOut(store, nil, "destroy", "wb"); return err },
		Cmd:    func() *exec.Cmd { return h.kp(store, nil, "build", ns, "--name", "wb") },
	}}
	if p, err := h.podman(); err != nil {
		h.skip("warm build / podman create: " + err.Error())
	} else {
		h.cleanups = append(h.cleanups, func() { _ = exec.Command(p, "rm", "-f", podmanCreateCtr).Run() })
		cs = append(cs, bench.Contender{
			Name: "podman create",
			Before: func() error {
				c := exec.CommandContext(h.ctx, p, "rm", "-f", "--ignore", podmanCreateCtr)
				if out, err := c.CombinedOutput(); err != nil {
					return fmt.Errorf("podman rm: %v: %s", err, lastLines(out))
				}
				return nil
			},
			Cmd: func() *exec.Cmd {
				args := append([]string{"create", "--name", podmanCreateCtr, "--network", "none"}, podmanFlags...)
				return exec.CommandContext(h.ctx, p, append(args, podmanImage, "/bin/true")...)
			},
		})
	}
	h.compare("warm build", h.rounds(9, 3), "podman create", 0, cs)
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// lastLines is the end of a command's output, for error messages.
func lastLines(out []byte) string {
	out = bytes.TrimSpace(out)
	lines := strings.Split(string(out), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	s := strings.Join(lines, " | ")
	if len(s) > 400 {
		s = s[len(s)-400:]
	}
	return s
}

func distroboxVersion(p string) string {
	out, err := exec.Command(p, "version").Output()
	if err != nil {
		return "(unknown version)"
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "(unknown version)"
	}
	return strings.TrimPrefix(f[len(f)-1], "distrobox:")
}

// waitKeeper waits (up to 5 s) for the record of an environment's keeper.
func waitKeeper(envDir string) error {
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(filepath.Join(envDir, "keeper")); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no keeper in %s after a fast-path exec", envDir)
}
