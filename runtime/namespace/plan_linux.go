package namespace

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/karapace/karapace/runtime/sandbox"
)

// flatPlan is what the C half reads: every field as a NUL-terminated string, in the
// order nsinit.c's read_plan expects. Numbers are decimal.
type flatPlan struct {
	parentUserNS, parentMntNS uint64
	tty, netns, readonly      bool
	skipUserNS, skipMntNS     bool
	overlayMode               string // auto, kernel or fuse
	fusePath                  string
	hostname                  string
	// The command's limits (sandbox.Security): the capabilities it keeps as a mask,
	// the paths masked and made read-only, and the seccomp program in hex.
	caps                  uint64
	masked, readonlyPaths []string
	seccomp               string
	overlayOpts           string
	merged                string
	setupLock             string
	mounts                []flatMount
	env, argv             []string
	dir                   string
}

type flatMount struct {
	typ, source, dest, data string
	flags                   uintptr
	file, optional          bool
	bind, recursive         bool
}

const planMagic = "KPNS2"

// planWriter appends the launcher's encoding: NUL-terminated strings, decimal numbers,
// flags as "0" or "1", lists as a count then the items.
type planWriter struct{ bytes.Buffer }

func (w *planWriter) str(s string) { w.WriteString(s); w.WriteByte(0) }
func (w *planWriter) num(n uint64) { w.str(strconv.FormatUint(n, 10)) }
func (w *planWriter) list(l []string) {
	w.num(uint64(len(l)))
	for _, s := range l {
		w.str(s)
	}
}

func (w *planWriter) flag(v bool) {
	if v {
		w.str("1")
	} else {
		w.str("0")
	}
}

func (p *flatPlan) encode() []byte {
	var w planWriter
	w.str(planMagic)
	w.num(p.parentUserNS)
	w.num(p.parentMntNS)
	p.encodeHead(&w)
	w.str(p.overlayOpts)
	w.str(p.merged)
	p.encodeMounts(&w)
	w.list(p.env)
	w.list(p.argv)
	w.str(p.dir)
	return w.Bytes()
}

// encodeHead writes the fields from tty to seccomp.
func (p *flatPlan) encodeHead(w *planWriter) {
	w.flag(p.tty)
	w.flag(p.netns)
	w.flag(p.readonly)
	w.flag(p.skipUserNS)
	w.flag(p.skipMntNS)
	w.str(p.overlayMode)
	w.str(p.fusePath)
	w.str(p.hostname)
	w.num(p.caps)
	w.list(p.masked)
	w.list(p.readonlyPaths)
	w.str(p.seccomp)
}

// encodeMounts writes the setup lock and the mounts.
func (p *flatPlan) encodeMounts(w *planWriter) {
	w.str(p.setupLock)
	w.num(uint64(len(p.mounts)))
	for _, m := range p.mounts {
		w.str(m.typ)
		w.str(m.source)
		w.str(m.dest)
		w.str(m.data)
		w.num(uint64(m.flags))
		w.flag(m.file)
		w.flag(m.optional)
		w.flag(m.bind)
		w.flag(m.recursive)
	}
}

// optionFlags maps OCI mount options to mount(2) flags: set, or cleared when clear.
var optionFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":            {false, syscall.MS_RDONLY},
	"rw":            {true, syscall.MS_RDONLY},
	"nosuid":        {false, syscall.MS_NOSUID},
	"suid":          {true, syscall.MS_NOSUID},
	"nodev":         {false, syscall.MS_NODEV},
	"dev":           {true, syscall.MS_NODEV},
	"noexec":        {false, syscall.MS_NOEXEC},
	"exec":          {true, syscall.MS_NOEXEC},
	"sync":          {false, syscall.MS_SYNCHRONOUS},
	"async":         {true, syscall.MS_SYNCHRONOUS},
	"dirsync":       {false, syscall.MS_DIRSYNC},
	"noatime":       {false, syscall.MS_NOATIME},
	"atime":         {true, syscall.MS_NOATIME},
	"nodiratime":    {false, syscall.MS_NODIRATIME},
	"diratime":      {true, syscall.MS_NODIRATIME},
	"relatime":      {false, syscall.MS_RELATIME},
	"norelatime":    {true, syscall.MS_RELATIME},
	"strictatime":   {false, syscall.MS_STRICTATIME},
	"nostrictatime": {true, syscall.MS_STRICTATIME},
}

// propagationOptions are accepted and ignored: the launcher makes every mount of the
// new namespace private, so nothing propagates back to the host.
var propagationOptions = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true,
	"slave": true, "rslave": true, "unbindable": true, "runbindable": true,
}

// flattenMount turns one sandbox.Mount into the launcher's form.
func flattenMount(m sandbox.Mount) (flatMount, error) {
	if !path.IsAbs(m.Destination) {
		return flatMount{}, fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	for _, c := range strings.Split(m.Destination, "/") {
		if c == ".." {
			return flatMount{}, fmt.Errorf("mount destination %q contains ..", m.Destination)
		}
	}
	f := flatMount{typ: m.Type, source: m.Source, dest: path.Clean(m.Destination), file: m.File, optional: m.Optional}
	if m.Type == "bind" {
		f.bind = true
	}
	var data []string
	for _, o := range m.Options {
		switch {
		case o == "bind":
			f.bind = true
		case o == "rbind":
			f.bind, f.recursive = true, true
		case propagationOptions[o]:
		default:
			if fl, ok := optionFlags[o]; ok {
				if fl.clear {
					f.flags &^= fl.flag
				} else {
					f.flags |= fl.flag
				}
				continue
			}
			data = append(data, o)
		}
	}
	if f.bind {
		if !path.IsAbs(m.Source) {
			return flatMount{}, fmt.Errorf("bind source %q is not absolute", m.Source)
		}
		f.typ = "bind"
		if len(data) > 0 {
			return flatMount{}, fmt.Errorf("bind mount of %q: unsupported options %v", m.Source, data)
		}
	} else if f.typ == "" {
		return flatMount{}, fmt.Errorf("mount on %q has no type", m.Destination)
	}
	if f.source == "" {
		f.source = f.typ
	}
	f.data = strings.Join(data, ",")
	for _, s := range []string{f.typ, f.source, f.dest, f.data} {
		if strings.IndexByte(s, 0) >= 0 {
			return flatMount{}, fmt.Errorf("mount on %q: NUL byte in a field", m.Destination)
		}
	}
	return f, nil
}

// overlayOptions builds the overlay mount data. Kernel overlayfs and fuse-overlayfs both
// split on ',' and ':', so paths holding them (or a backslash) are refused rather than
// escaped differently for each driver.
func overlayOptions(r sandbox.Root, work string) (string, error) {
	if len(r.Lower) == 0 {
		return "", fmt.Errorf("overlay root: no lower layer")
	}
	check := func(p string) error {
		if !path.IsAbs(p) {
			return fmt.Errorf("overlay path %q is not absolute", p)
		}
		if strings.ContainsAny(p, ",:\\\x00") {
			return fmt.Errorf("overlay path %q contains ',', ':', '\\' or NUL", p)
		}
		return nil
	}
	lowers := append([]string(nil), r.Lower...)
	if r.ReadOnly && r.Upper != "" {
		// A frozen root: the upper layer becomes the topmost lower, and with no upper
		// directory the overlay cannot be written at all.
		lowers = append([]string{r.Upper}, lowers...)
	}
	for _, l := range lowers {
		if err := check(l); err != nil {
			return "", err
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if r.ReadOnly {
		return opts, nil
	}
	if r.Upper == "" {
		return "", fmt.Errorf("overlay root: no upper directory")
	}
	for _, p := range []string{r.Upper, work} {
		if err := check(p); err != nil {
			return "", err
		}
	}
	return opts + ",upperdir=" + r.Upper + ",workdir=" + work, nil
}

func checkStrings(what string, l []string) error {
	for _, s := range l {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%s: NUL byte in %q", what, s)
		}
	}
	return nil
}

// flattenSecurity puts the command's limits into the launcher's form.
func flattenSecurity(fp *flatPlan, sec sandbox.Security) error {
	caps, err := capabilityMask(sec.Capabilities)
	if err != nil {
		return err
	}
	for _, l := range [][]string{sec.MaskedPaths, sec.ReadonlyPaths} {
		for _, p := range l {
			if !path.IsAbs(p) || path.Clean(p) != p || strings.IndexByte(p, 0) >= 0 {
				return fmt.Errorf("masked or read-only path %q is not an absolute clean path", p)
			}
		}
	}
	prog, err := compileSeccomp(sec.Syscalls)
	if err != nil {
		return err
	}
	fp.caps = caps
	fp.masked = sec.MaskedPaths
	fp.readonlyPaths = sec.ReadonlyPaths
	fp.seccomp = encodeSeccomp(prog)
	return nil
}
