package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// IDMapping is the user namespace's id mapping for one caller, and why it is what it is.
type IDMapping struct {
	UID []IDMap
	GID []IDMap
	// Full is true when more than the caller's own id is mapped (a subordinate range),
	// so package installs that chown to other users work.
	Full bool
	// NewUIDMap and NewGIDMap are the setuid helpers that must write the maps of an
	// unprivileged caller with a full mapping. Empty when they are not needed (single
	// mapping, or the caller is root and writes the maps itself).
	NewUIDMap string
	NewGIDMap string
	// Reason explains the mapping in one line, for doctor and error messages.
	Reason string
	// Fix, for a single mapping, is what gives the caller a full one: the helpers to
	// install, or the usermod line with a range no other user holds.
	Fix string
}

// IDSource says where IDMaps looks. Zero fields take the system defaults.
type IDSource struct {
	User     string // the caller's name
	UID, GID uint32
	SubUID   string // default /etc/subuid
	SubGID   string // default /etc/subgid
	// LookPath finds newuidmap/newgidmap; default exec.LookPath.
	LookPath func(string) (string, error)
}

// SubRange is one line of /etc/subuid or /etc/subgid.
type SubRange struct {
	Start, Count uint32
}

// ParseSubIDs returns the ranges that file content r grants to the user, named either
// by name or by numeric id, in file order. Malformed lines are skipped, as shadow-utils
// does.
func ParseSubIDs(r io.Reader, name string, id uint32) ([]SubRange, error) {
	ids := strconv.FormatUint(uint64(id), 10)
	var out []SubRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != ids) || f[0] == "" {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count-1 > 0xFFFFFFFE {
			continue
		}
		out = append(out, SubRange{Start: uint32(start), Count: uint32(count)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func readSubIDs(path, name string, id uint32) ([]SubRange, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSubIDs(f, name, id)
}

// IDMaps works out the id mapping: 0 inside -> the caller, and 1..N inside -> the
// caller's first subordinate range when /etc/subuid and /etc/subgid both grant one and
// newuidmap/newgidmap exist (root needs no helper). Otherwise the single mapping, with
// the reason in Reason. Only an unreadable sub-id file is an error.
func IDMaps(src IDSource) (IDMapping, error) {
	if src.SubUID == "" {
		src.SubUID = "/etc/subuid"
	}
	if src.SubGID == "" {
		src.SubGID = "/etc/subgid"
	}
	if src.LookPath == nil {
		src.LookPath = exec.LookPath
	}
	single := IDMapping{
		UID: []IDMap{{ContainerID: 0, HostID: src.UID, Size: 1}},
		GID: []IDMap{{ContainerID: 0, HostID: src.GID, Size: 1}},
	}
	uids, err := readSubIDs(src.SubUID, src.User, src.UID)
	if err != nil {
		return IDMapping{}, fmt.Errorf("read %s: %w", src.SubUID, err)
	}
	gids, err := readSubIDs(src.SubGID, src.User, src.UID)
	if err != nil {
		return IDMapping{}, fmt.Errorf("read %s: %w", src.SubGID, err)
	}
	// A range holding the caller's own id would overlap the 0 -> caller line.
	uids, gids = notHolding(uids, src.UID), notHolding(gids, src.GID)
	const hint = "single id mapping: package installs that chown will fail"
	who := fmt.Sprintf("%s (uid %d)", src.User, src.UID)
	if len(uids) == 0 || len(gids) == 0 {
		var missing []string
		if len(uids) == 0 {
			missing = append(missing, src.SubUID)
		}
		if len(gids) == 0 {
			missing = append(missing, src.SubGID)
		}
		single.Reason = fmt.Sprintf("%s: no range for %s in %s", hint, who, strings.Join(missing, " and "))
		start := freeSubRange(src.SubUID, src.SubGID)
		sudo := "sudo "
		if src.UID == 0 {
			sudo = ""
		}
		single.Fix = fmt.Sprintf("give %s a subordinate range no other user holds: %susermod --add-subuids %d-%d --add-subgids %d-%d %s",
			src.User, sudo, start, start+65535, start, start+65535, src.User)
		if src.UID != 0 {
			single.Fix += " (and install newuidmap/newgidmap: apt install uidmap)"
		}
		return single, nil
	}
	m := IDMapping{
		UID:  []IDMap{{ContainerID: 0, HostID: src.UID, Size: 1}, {ContainerID: 1, HostID: uids[0].Start, Size: uids[0].Count}},
		GID:  []IDMap{{ContainerID: 0, HostID: src.GID, Size: 1}, {ContainerID: 1, HostID: gids[0].Start, Size: gids[0].Count}},
		Full: true,
	}
	if src.UID != 0 {
		nu, err1 := src.LookPath("newuidmap")
		ng, err2 := src.LookPath("newgidmap")
		if err1 != nil || err2 != nil {
			single.Reason = fmt.Sprintf("%s: %s has a subordinate range but newuidmap/newgidmap are not installed", hint, who)
			single.Fix = "install newuidmap and newgidmap: apt install uidmap (Debian/Ubuntu), dnf install shadow-utils (Fedora), zypper install shadow (openSUSE)"
			return single, nil
		}
		m.NewUIDMap, m.NewGIDMap = nu, ng
	}
	m.Reason = fmt.Sprintf("full id mapping: uids 1..%d -> %d.., gids 1..%d -> %d..",
		uids[0].Count, uids[0].Start, gids[0].Count, gids[0].Start)
	return m, nil
}

func notHolding(rs []SubRange, id uint32) []SubRange {
	var out []SubRange
	for _, r := range rs {
		if uint64(id) >= uint64(r.Start) && uint64(id) < uint64(r.Start)+uint64(r.Count) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// freeSubRange is the lowest 65536-aligned range of 65536 ids from 100000 up that no line
// of the given sub-id files (any user's) overlaps.
func freeSubRange(paths ...string) uint32 {
	type span struct{ lo, hi uint64 }
	var taken []span
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(strings.TrimSpace(line), ":")
			if len(f) != 3 {
				continue
			}
			start, err1 := strconv.ParseUint(f[1], 10, 32)
			count, err2 := strconv.ParseUint(f[2], 10, 32)
			if err1 == nil && err2 == nil && count > 0 {
				taken = append(taken, span{start, start + count})
			}
		}
	}
	const size = 65536
	for lo := uint64(100000); lo+size <= 1<<32; lo += size {
		free := true
		for _, t := range taken {
			if lo < t.hi && t.lo < lo+size {
				free = false
				break
			}
		}
		if free {
			return uint32(lo)
		}
	}
	return 100000
}
