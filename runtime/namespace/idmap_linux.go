package namespace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/karapace/karapace/runtime/sandbox"
)

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
