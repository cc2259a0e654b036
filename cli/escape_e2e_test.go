package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// The escape tests run a hostile program (testdata/attack.c) inside an environment, on
// every way a command starts (the exec fast path with a root of its own and joined to
// the keeper, the Go path, a build step of a hostile image), as root and as an
// unprivileged user, and require every attempt to be refused: pushing input into the
// user's terminal, writing host sysctls, remounting read-only binds writable, mounting
// a fresh proc or sysfs, new namespaces, unmasking, holding dangerous capabilities.

var (
	attackOnce sync.Once
	attackPath string
	attackErr  error
)

// attackBinary compiles testdata/attack.c, statically, once for the package's tests.
func attackBinary(t *testing.T) string {
	t.Helper()
	attackOnce.Do(func() {
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			attackErr = err
			return
		}
		// Beside the karapace binary: TestMain's directory, readable by the test user
		// and removed when the tests end.
		attackPath = filepath.Join(filepath.Dir(binary), "attack")
		out, err := exec.Command(gcc, "-static", "-O1", "-o", attackPath, "testdata/attack.c").CombinedOutput()
		if err != nil {
			attackErr = &exec.Error{Name: "gcc -static testdata/attack.c: " + string(out), Err: err}
		}
	})
	if attackErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): gcc with a static libc (gcc, libc6-dev): %v", attackErr)
		}
		t.Skipf("SKIPPING: gcc with a static libc (gcc, libc6-dev) is needed: %v (this test fails under CI=true)", attackErr)
	}
	return attackPath
}

// hostileWorld is a world (as root, or as u when given) whose image is busybox plus
// /attack and an /usr/bin/apt-get that runs it: a build with packages runs the attack
// as its package manager's first step. ns.toml builds with no packages, hostile.toml
// with one.
func hostileWorld(t *testing.T, u *testrootfs.User) *world {
	t.Helper()
	attack := attackBinary(t)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", testrootfs.Busybox(t), rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy the busybox rootfs: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", attack, filepath.Join(rootfs, "attack")).CombinedOutput(); err != nil {
		t.Fatalf("copy the attack: %v\n%s", err, out)
	}
	aptGet := "#!/bin/sh\n/attack all > /tmp/attack.out 2>&1\ngrep ESCAPED /tmp/attack.out >&2\ntail -n 1 /tmp/attack.out >&2\nexit 1\n"
	if err := os.MkdirAll(filepath.Join(rootfs, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "usr", "bin", "apt-get"), []byte(aptGet), 0o755); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball})
	var w *world
	if u == nil {
		w = newWorld(t)
	} else {
		w = userWorld(t, *u)
	}
	w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
	w.write("ns.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"namespace\"\n")
	w.write("oci.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"oci\"\n")
	w.write("hostile.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[system]\npackages = [\"anything\"]\n\n[runtime]\nbackend = \"namespace\"\n")
	return w
}

// userWorld is a world whose runs are u's: its directories (outside the test's 0700
// temp dir) belong to u, and are removed when the test ends.
func userWorld(t *testing.T, u testrootfs.User) *world {
	t.Helper()
	root, err := os.MkdirTemp("", "karapace-cli-user-")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, store: filepath.Join(root, "store"), dir: filepath.Join(root, "project"), cred: u.Credential()}
	t.Cleanup(func() {
		releaseKeepers(t, w.store)
		os.RemoveAll(root)
	})
	home := filepath.Join(root, "home")
	for _, d := range []string{root, w.dir, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	w.env = []string{"HOME=" + home, "USER=" + u.Name, "PATH=" + os.Getenv("PATH"), "KARAPACE_STORE=" + w.store}
	return w
}

// checkAttack requires a complete report with every attempt refused.
func checkAttack(t *testing.T, where string, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, "ESCAPED") || !strings.Contains(r.stdout, "attack done: all refused") || r.code != 0 {
		t.Errorf("%s: the sandbox let the attack through:\n%s", where, r)
		return
	}
	for _, want := range []string{"tiocsti-fd0", "seccomp-tioclinux", "sysctl-write /proc/sys/kernel/core_pattern",
		"remount-rw /etc/hosts", "capabilities", "mount-proc", "clone-userns", "masked /proc/kcore"} {
		if !strings.Contains(r.stdout, want+": REFUSED") {
			t.Errorf("%s: no refusal of %s in the report:\n%s", where, want, r)
		}
	}
}

// onTerminal runs the command with a new pty as its controlling terminal and standard
// input (as in a user's shell), and reports how many bytes wait in the terminal's
// input queue afterwards: input pushed by the command with TIOCSTI would be there.
func onTerminal(t *testing.T, w *world, args ...string) (result, int) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if w.cred != nil {
		if err := slave.Chown(int(w.cred.Uid), int(w.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	c := w.cmd(args...)
	var out, errb strings.Builder
	c.Stdin, c.Stdout, c.Stderr = slave, &out, &errb
	attr := c.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	c.SysProcAttr = attr
	code := 0
	if err := c.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("karapace %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	queued, err := unix.IoctlGetInt(int(slave.Fd()), unix.TIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}, queued
}

func TestCLIEscapes(t *testing.T) {
	runEscapes(t, nil)
}

func TestCLIEscapesRootless(t *testing.T) {
	u := testrootfs.RootlessUser(t)
	runEscapes(t, &u)
}

// TestCLIEscapesOCI runs the attack under the OCI backend (crun or runc), which gets the
// same profile through config.json.
func TestCLIEscapesOCI(t *testing.T) {
	w := hostileWorld(t, nil)
	w.buildNamed("oci.toml", "o")
	checkAttack(t, "OCI backend", w.run("exec", "o", "--", "/attack", "all"))
	w.ok("destroy", "o")
}

func runEscapes(t *testing.T, u *testrootfs.User) {
	w := hostileWorld(t, u)
	mountsBefore := mounts(t)
	id := w.buildNamed("ns.toml", "h")
	envDir := filepath.Join(w.store, "env", id)
	attack := []string{"exec", "h", "--", "/attack", "all"}

	goPath := w.withEnv("KARAPACE_FASTEXEC=off")
	checkAttack(t, "Go path", goPath.run(attack...))
	// The first exec through the engine leaves the fast path's plan.
	fresh := w.withEnv("KARAPACE_FASTEXEC=require", "KARAPACE_KEEP_ALIVE=0")
	checkAttack(t, "fast path", fresh.run(attack...))
	kept := w.withEnv("KARAPACE_FASTEXEC=require", "KARAPACE_KEEP_ALIVE=30")
	checkAttack(t, "fast path (making the keeper)", kept.run(attack...))
	keeperOf(t, envDir, true)
	checkAttack(t, "fast path joined to the keeper", kept.run(attack...))

	// On the user's own terminal: nothing lands in its input queue, on any path.
	for _, c := range []struct {
		name string
		w    *world
	}{{"Go path", goPath}, {"fast path", fresh}, {"keeper", kept}} {
		r, queued := onTerminal(t, c.w, attack...)
		checkAttack(t, c.name+" on a terminal", r)
		if queued != 0 {
			t.Errorf("%s: %d bytes were pushed into the terminal's input", c.name, queued)
		}
	}

	// A build step of the hostile image: its apt-get runs the attack and fails.
	r := w.run("build", "hostile.toml", "--name", "hostile")
	if r.code == 0 || strings.Contains(r.stderr, "ESCAPED") || !strings.Contains(r.stderr, "attack done: all refused") {
		t.Errorf("build step: %s", r)
	}
	// A failed package step under the single id mapping says why packages may fail and
	// how to get a full mapping.
	uid, name := uint32(0), "root"
	if u != nil {
		uid, name = uint32(u.UID), u.Name
	}
	ids, err := sandbox.IDMaps(sandbox.IDSource{User: name, UID: uid, GID: uid})
	if err != nil {
		t.Fatal(err)
	}
	if hinted := strings.Contains(r.stderr, "hint: the environment maps only your own id"); hinted == ids.Full ||
		(hinted && !strings.Contains(r.stderr, "usermod --add-subuids")) {
		t.Errorf("build step with a full mapping %v: the id mapping hint %v:\n%s", ids.Full, hinted, r)
	}
	releaseKeepers(t, w.store)
	w.ok("destroy", "h")
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}

// TestCLIMountRace swaps a component of a [mounts] source for a symlink to / (an atomic
// RENAME_EXCHANGE, over and over) while sessions start: the policy checks the resolved
// path and the launcher mounts the very path it checked, opened with no symlink allowed
// in it, so no session ever sees the host's /etc. Before, 3 in 300 did.
func TestCLIMountRace(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	mountsBefore := mounts(t)
	base := t.TempDir()
	real, link := filepath.Join(base, "a"), filepath.Join(base, "a.swap")
	if err := os.MkdirAll(filepath.Join(real, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "etc", "benign"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[mounts]\nx = \""+
		filepath.Join(real, "etc")+":/mnt/etc\"\n\n[runtime]\nbackend = \"namespace\"\n")
	w.buildNamed("karapace.toml", "race")

	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				// Leave the real directory in place.
				if n%2 == 1 {
					_ = unix.Renameat2(unix.AT_FDCWD, real, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE)
				}
				swapped <- n
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, real, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err == nil {
				n++
			}
		}
	}()
	const runs = 500
	benign, refused := 0, 0
	for i := 0; i < runs; i++ {
		r := w.run("exec", "race", "--", "/bin/ls", "/mnt/etc")
		switch {
		case strings.Contains(r.stdout, "passwd"):
			close(stop)
			<-swapped
			t.Fatalf("run %d mounted the host's /etc:\n%s", i, r)
		case r.code == 0 && r.stdout == "benign\n":
			benign++
		case r.code != 0:
			refused++
		default:
			t.Errorf("run %d: unexpected %s", i, r)
		}
	}
	close(stop)
	n := <-swapped
	t.Logf("%d sessions: %d mounted the checked directory, %d were refused; %d swaps", runs, benign, refused, n)
	if benign == 0 || refused == 0 || n < runs {
		t.Errorf("the race did not run: %d benign, %d refused, %d swaps", benign, refused, n)
	}
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}
