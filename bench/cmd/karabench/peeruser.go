package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// peerImage is the Debian image distrobox and toolbox run: they need a real
	// distribution (distrobox's init wants sudo, useradd, diff and friends; toolbox's
	// init wants capsh), which busybox is not.
	peerImage = "localhost/karabench-debian"
	// peerPackages are what distrobox-init 1.4 and toolbox init-container check for,
	// installed up front so that neither installs anything while it is measured.
	peerPackages = "sudo,passwd,diffutils,pinentry-curses,wget,curl,less,bc,time,lsof,procps,util-linux,findutils,libcap2-bin,bash"
	debianMirror = "http://deb.debian.org/debian"
)

// peerUser is the unprivileged account the distrobox and toolbox peers run as:
// distrobox refuses uid 0, and both are tools for users on rootless podman. Its podman
// state (storage, runtime dir, containers.conf), its HOME and the private system bus
// toolbox needs live in <work>/peer, so the harness neither sees nor changes the
// account's own containers and files. Everything it starts is stopped by PID in close.
type peerUser struct {
	h        *harness
	name     string
	uid, gid uint32
	dir      string
	env      []string
	bus      *exec.Cmd // the private D-Bus system bus, once started
}

// newPeerUser prepares the account named by $KARAPACE_TEST_USER (default
// karapace-test, which .ci/test-user creates with a subordinate id range).
func (h *harness) newPeerUser() (*peerUser, error) {
	name := os.Getenv("KARAPACE_TEST_USER")
	if name == "" {
		name = "karapace-test"
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the harness runs them as the user %s, which needs root", name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("the unprivileged user %s does not exist (.ci/test-user creates it): %v", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	if b, err := os.ReadFile("/etc/subuid"); err != nil || !strings.Contains("\n"+string(b), "\n"+name+":") {
		return nil, fmt.Errorf("the user %s has no subordinate uid range in /etc/subuid, which rootless podman needs (.ci/test-user adds one)", name)
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return nil, fmt.Errorf("newuidmap is not installed (package uidmap), which rootless podman needs")
	}
	p := &peerUser{h: h, name: name, uid: uint32(uid), gid: uint32(gid), dir: filepath.Join(h.cfg.work, "peer")}
	// The account must reach its directory inside the harness's private work dir.
	if err := os.Chmod(h.cfg.work, 0o711); err != nil {
		return nil, err
	}
	home, run := filepath.Join(p.dir, "home"), filepath.Join(p.dir, "run")
	for _, d := range []string{p.dir, home, run, filepath.Join(p.dir, "storage")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(d, int(uid), int(gid)); err != nil {
			return nil, err
		}
	}
	// runc, because crun refuses this machine's hybrid cgroups (NOTES.md); vfs, because
	// fuse-overlayfs needs /dev/fuse, which only root may open here.
	files := map[string]string{
		"containers.conf": "[engine]\nruntime = \"runc\"\n",
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(p.dir, "storage"), filepath.Join(run, "containers")),
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(p.dir, f), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	p.env = []string{
		"HOME=" + home, "USER=" + name, "LOGNAME=" + name, "SHELL=/bin/sh", "LANG=C.UTF-8",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"XDG_RUNTIME_DIR=" + run,
		"CONTAINERS_CONF=" + filepath.Join(p.dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(p.dir, "storage.conf"),
		"DBX_CONTAINER_MANAGER=podman",
	}
	h.cleanups = append(h.cleanups, p.close)
	return p, nil
}

// command runs name as the peer user, in its HOME, with its environment only.
func (p *peerUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = filepath.Join(p.dir, "home")
	c.Env = p.env
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: p.uid, Gid: p.gid, Groups: []uint32{p.gid}}}
	return c
}

// run runs a set-up command as the peer user and returns its combined output.
func (p *peerUser) run(ctx context.Context, name string, args ...string) error {
	out, err := p.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(out))
	}
	return nil
}

// image makes the Debian image both peers run: debootstrap (as root) with the packages
// their inits need, imported into the peer user's podman.
func (p *peerUser) image(ctx context.Context) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap is not installed: distrobox and toolbox need a Debian image and no image registry is reachable")
	}
	rootfs := filepath.Join(p.h.cfg.work, "peer-rootfs")
	defer removeAll(rootfs)
	p.h.log.Info("debootstrap of the distrobox/toolbox image", "packages", peerPackages)
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+peerPackages, "bookworm", rootfs, debianMirror).CombinedOutput()
	if err != nil {
		return fmt.Errorf("debootstrap: %v: %s", err, lastLines(out))
	}
	tar := exec.CommandContext(ctx, "tar", "-C", rootfs, "-c", ".")
	imp := p.command(ctx, "podman", "import", "-", peerImage)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	var tarErr, impOut bytes.Buffer
	tar.Stderr = &tarErr
	imp.Stdin, imp.Stdout, imp.Stderr = pipe, &impOut, &impOut
	if err := tar.Start(); err != nil {
		return err
	}
	ierr := imp.Run()
	// Whatever import did, drain and reap tar.
	_, _ = io.Copy(io.Discard, pipe)
	terr := tar.Wait()
	if ierr != nil || terr != nil {
		return fmt.Errorf("podman import of the Debian rootfs: %v %v: %s %s", ierr, terr, lastLines(impOut.Bytes()), lastLines(tarErr.Bytes()))
	}
	return nil
}

// systemBus starts a D-Bus system bus for toolbox alone: a dbus-daemon on a socket in
// the peer directory (DBUS_SYSTEM_BUS_ADDRESS points toolbox at it), not the machine's
// /run/dbus, so nothing else on the machine sees it. close stops it by PID.
func (p *peerUser) systemBus(ctx context.Context) error {
	if p.bus != nil {
		return nil
	}
	d, err := exec.LookPath("dbus-daemon")
	if err != nil {
		return fmt.Errorf("toolbox needs a D-Bus system bus, and dbus-daemon (package dbus) is not installed")
	}
	sock := filepath.Join(p.dir, "system_bus_socket")
	conf := filepath.Join(p.dir, "system-bus.conf")
	text := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	c := exec.Command(d, "--config-file="+conf, "--nofork", "--nopidfile")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		return fmt.Errorf("starting dbus-daemon: %w", err)
	}
	p.bus = c
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("dbus-daemon did not create %s: %s", sock, lastLines(out.Bytes()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.env = append(p.env, "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+sock)
	return nil
}

// close removes the peers' containers (stopping them and their conmon monitors), stops
// podman's rootless pause process and the private system bus, each by its PID.
func (p *peerUser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := p.command(ctx, "podman", "rm", "--force", "--all", "--time", "0").CombinedOutput(); err != nil {
		p.h.log.Warn("removing the peer containers", "err", err, "out", lastLines(out))
	}
	// podman's rootless pause process keeps the user namespace alive after podman
	// exits (and conmon would outlive a container that failed to stop): every process
	// of the peer user whose environment names our runtime dir was started by us.
	for _, pid := range p.processes() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if p.bus != nil {
		_ = p.bus.Process.Kill()
		_ = p.bus.Wait()
	}
}

// processes lists the PIDs of the peer user's processes started with our runtime dir.
func (p *peerUser) processes() []int {
	mark := []byte("\x00XDG_RUNTIME_DIR=" + filepath.Join(p.dir, "run") + "\x00")
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+e.Name(), &st); err != nil || st.Uid != p.uid {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(append([]byte{0}, env...), mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}
