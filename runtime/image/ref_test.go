package image

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveAliasTable(t *testing.T) {
	want := map[string]struct{ distro, release, key string }{
		"rolling":             {"opensuse", "tumbleweed", "opensuse-tumbleweed"},
		"opensuse":            {"opensuse", "tumbleweed", "opensuse-tumbleweed"},
		"opensuse/tumbleweed": {"opensuse", "tumbleweed", "opensuse-tumbleweed"},
		"tumbleweed":          {"opensuse", "tumbleweed", "opensuse-tumbleweed"},
		"opensuse/leap":       {"opensuse", "15.6", "opensuse-leap-15.6"},
		"leap":                {"opensuse", "15.6", "opensuse-leap-15.6"},
		"ubuntu":              {"ubuntu", "noble", "ubuntu-noble"},
		"ubuntu/24.04":        {"ubuntu", "noble", "ubuntu-noble"},
		"ubuntu/noble":        {"ubuntu", "noble", "ubuntu-noble"},
		"ubuntu/22.04":        {"ubuntu", "jammy", "ubuntu-jammy"},
		"ubuntu/jammy":        {"ubuntu", "jammy", "ubuntu-jammy"},
		"ubuntu/24.10":        {"ubuntu", "oracular", "ubuntu-oracular"},
		"ubuntu/oracular":     {"ubuntu", "oracular", "ubuntu-oracular"},
		"ubuntu/20.04":        {"ubuntu", "focal", "ubuntu-focal"},
		"ubuntu/focal":        {"ubuntu", "focal", "ubuntu-focal"},
		"debian":              {"debian", "bookworm", "debian-bookworm"},
		"debian/bookworm":     {"debian", "bookworm", "debian-bookworm"},
		"debian/trixie":       {"debian", "trixie", "debian-trixie"},
		"debian/sid":          {"debian", "sid", "debian-sid"},
		"fedora":              {"fedora", "41", "fedora-41"},
		"fedora/41":           {"fedora", "41", "fedora-41"},
		"fedora/40":           {"fedora", "40", "fedora-40"},
		"fedora/42":           {"fedora", "42", "fedora-42"},
		"arch":                {"archlinux", "current", "archlinux"},
		"archlinux":           {"archlinux", "current", "archlinux"},
	}
	if got := len(Aliases()); got != len(want) || got != 25 {
		t.Fatalf("Aliases() has %d names, table here %d, original 25", got, len(want))
	}
	for _, name := range Aliases() {
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected alias %q", name)
			continue
		}
		for _, in := range []string{name, strings.ToUpper(name), "  " + name + "\n"} {
			ref, err := Resolve(in)
			if err != nil {
				t.Errorf("Resolve(%q): %v", in, err)
				continue
			}
			if ref.Kind != KindAlias || ref.Distro != w.distro || ref.Release != w.release || ref.Key != w.key || ref.Display == "" {
				t.Errorf("Resolve(%q) = %+v, want %+v", in, ref, w)
			}
			if !validKey(ref.Key) {
				t.Errorf("key %q is not a valid cache key", ref.Key)
			}
		}
	}
}

func TestResolveUnknown(t *testing.T) {
	for _, in := range []string{"", "  ", "gentoo", "debian/buster", "ftp://x/y.tar", "relative/path.tar.xz", "debian/../x"} {
		_, err := Resolve(in)
		if !errors.Is(err, ErrImageNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrImageNotFound", in, err)
		}
	}
	_, err := Resolve("gentoo")
	for _, name := range []string{"ubuntu/jammy", "tumbleweed", "archlinux", "http(s) URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list %q", err, name)
		}
	}
}

func TestResolveURLKeepsCase(t *testing.T) {
	const u = "https://Example.com/Images/RootFS.tar.xz"
	ref, err := Resolve(u)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Kind != KindURL || ref.URL != u {
		t.Fatalf("Resolve(%q) = %+v, want the URL unchanged", u, ref)
	}
	lower, err := Resolve(strings.ToLower(u))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Key == lower.Key {
		t.Errorf("URLs differing in case share cache key %s", ref.Key)
	}
	if !strings.HasPrefix(ref.Key, "custom-") || len(ref.Key) != len("custom-")+64 || !validKey(ref.Key) {
		t.Errorf("key %q, want custom-<64 hex>", ref.Key)
	}
	if _, err := Resolve("http://"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("URL without host: %v", err)
	}
}

func TestResolveLocal(t *testing.T) {
	a, err := Resolve("/srv/images/rootfs.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Resolve("file:///srv/images/rootfs.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != KindLocal || b.Kind != KindLocal || a.Path != "/srv/images/rootfs.tar.zst" || a.Path != b.Path || a.Key != b.Key {
		t.Errorf("path and file URL differ: %+v vs %+v", a, b)
	}
	if !strings.HasPrefix(a.Key, "local-") || !validKey(a.Key) {
		t.Errorf("key %q", a.Key)
	}
	for _, bad := range []string{"file://relative/x.tar", "file://host.example/x.tar"} {
		if _, err := Resolve(bad); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrImageNotFound", bad, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"", ".", "..", "../x", "a/b", ".hidden", "A", "x\x00"} {
		if validKey(k) {
			t.Errorf("validKey(%q) = true", k)
		}
	}
}
