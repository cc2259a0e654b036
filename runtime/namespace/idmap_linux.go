package namespace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/karapace/karapace/runtime/sandbox"
)

// Mapping describes the id mapping this host gives the caller's environments.
type Mapping struct {
	UID, GID []sandbox.IDMap
	// Full is true when a subordinate range is mapped besides the caller's own id, so
	// package scripts can chown files to other users.
	Full bool
	// Reason says why only a single id is mapped (empty when Full).
	Reason string
}

// IDMapping computes the id maps for the calling user: 0 inside is the caller; where
// /etc/subuid and /etc/subgid give the caller a range and newuidmap/newgidmap are
// installed (or the caller is root, who writes maps directly), ids 1..n map onto that
// range. Otherwise only the single mapping is returned, with the reason (the doctor
// reports it).
//
// As real root with no subordinate range, root inside is root outside and nothing else
// is mapped: the sandbox never maps host ids it was not given.
func IDMapping(ctx context.Context) Mapping {
	uid, gid := os.Getuid(), os.Getgid()
	m := Mapping{
		UID: []sandbox.IDMap{{ContainerID: 0, HostID: uint32(uid), Size: 1}},
		GID: []sandbox.IDMap{{ContainerID: 0, HostID: uint32(gid), Size: 1}},
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	subu, erru := subordinateRange("/etc/subuid", name, uid)
	subg, errg := subordinateRange("/etc/subgid", name, uid)
	switch {
	case erru != nil:
		m.Reason = erru.Error()
		return m
	case errg != nil:
		m.Reason = errg.Error()
		return m
	}
	if uid != 0 {
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			if _, err := exec.LookPath(tool); err != nil {
				m.Reason = tool + " is not installed (Debian/Ubuntu: apt install uidmap)"
				return m
			}
		}
	}
	m.UID = append(m.UID, sandbox.IDMap{ContainerID: 1, HostID: subu[0], Size: subu[1]})
	m.GID = append(m.GID, sandbox.IDMap{ContainerID: 1, HostID: subg[0], Size: subg[1]})
	m.Full = true
	return m
}

// subordinateRange returns the first range of user (by name or uid) in an /etc/subuid
// style file.
func subordinateRange(file, name string, uid int) ([2]uint32, error) {
	f, err := os.Open(file)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("no subordinate ids: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.ParseUint(fields[1], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		return [2]uint32{uint32(start), uint32(count)}, nil
	}
	return [2]uint32{}, fmt.Errorf("no range for %s in %s", name, file)
}

func formatMap(m []sandbox.IDMap) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// writeIDMaps maps the user namespace of pid. Root writes the files; an unprivileged
// caller writes a single self-mapping itself (after denying setgroups, as the kernel
// requires) and goes through newuidmap/newgidmap for anything wider.
func writeIDMaps(ctx context.Context, pid int, uidMap, gidMap []sandbox.IDMap) error {
	if len(uidMap) == 0 || len(gidMap) == 0 {
		return errors.New("id maps are empty")
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if os.Geteuid() == 0 {
		if err := os.WriteFile(proc+"/gid_map", []byte(formatMap(gidMap)), 0); err != nil {
			return fmt.Errorf("write gid_map: %w", err)
		}
		if err := os.WriteFile(proc+"/uid_map", []byte(formatMap(uidMap)), 0); err != nil {
			return fmt.Errorf("write uid_map: %w", err)
		}
		return nil
	}
	self := func(m []sandbox.IDMap, id int) bool {
		return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
	}
	if self(uidMap, os.Geteuid()) && self(gidMap, os.Getegid()) {
		if err := os.WriteFile(proc+"/setgroups", []byte("deny"), 0); err != nil {
			return fmt.Errorf("write setgroups: %w", err)
		}
		if err := os.WriteFile(proc+"/gid_map", []byte(formatMap(gidMap)), 0); err != nil {
			return fmt.Errorf("write gid_map: %w", err)
		}
		if err := os.WriteFile(proc+"/uid_map", []byte(formatMap(uidMap)), 0); err != nil {
			return fmt.Errorf("write uid_map: %w", err)
		}
		return nil
	}
	run := func(tool string, m []sandbox.IDMap) error {
		args := []string{strconv.Itoa(pid)}
		for _, e := range m {
			args = append(args, strconv.FormatUint(uint64(e.ContainerID), 10),
				strconv.FormatUint(uint64(e.HostID), 10), strconv.FormatUint(uint64(e.Size), 10))
		}
		out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("newgidmap", gidMap); err != nil {
		return err
	}
	return run("newuidmap", uidMap)
}
