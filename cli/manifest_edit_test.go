package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
)

func TestSetImage(t *testing.T) {
	const url = "https://images.example.org/debian/bookworm/amd64/20260101/rootfs.tar.xz"
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{
			name: "comments kept",
			in:   "# my env\nmanifest_version = 1\n\n[base]\nimage = \"rolling\"    # Tumbleweed\n\n[system]\npackages = [\"git\"] # tools\n",
			want: "# my env\nmanifest_version = 1\n\n[base]\nimage = \"" + url + "\"    # Tumbleweed\n\n[system]\npackages = [\"git\"] # tools\n",
			ok:   true,
		},
		{
			name: "indented, single quotes",
			in:   "manifest_version = 1\n[base]\n  image='debian/bookworm'\n[runtime]\nbackend = \"mock\"\n",
			want: "manifest_version = 1\n[base]\n  image = \"" + url + "\"\n[runtime]\nbackend = \"mock\"\n",
			ok:   true,
		},
		{
			name: "image key in another table is left alone",
			in:   "manifest_version = 1\n[mounts]\nimage = \"/home/x:/x\"\n[base]\nimage = \"rolling\"\n",
			want: "manifest_version = 1\n[mounts]\nimage = \"/home/x:/x\"\n[base]\nimage = \"" + url + "\"\n",
			ok:   true,
		},
		{
			name: "hash inside the string",
			in:   "manifest_version = 1\n[base]\nimage = \"a#b\" # note\n",
			want: "manifest_version = 1\n[base]\nimage = \"" + url + "\" # note\n",
			ok:   true,
		},
		{
			name: "escapes drop the comment, not the edit",
			in:   "manifest_version = 1\n[base]\nimage = \"a\\\"b\" # note\n",
			want: "manifest_version = 1\n[base]\nimage = \"" + url + "\"\n",
			ok:   true,
		},
		{name: "inline table", in: "manifest_version = 1\nbase = { image = \"rolling\" }\n"},
		{name: "dotted key", in: "manifest_version = 1\nbase.image = \"rolling\"\n"},
		{name: "multi-line string", in: "manifest_version = 1\n[base]\nimage = \"\"\"\nrolling\"\"\"\n"},
		{name: "not a manifest", in: "[base\n"},
	}
	for _, tt := range tests {
		got, ok := setImage([]byte(tt.in), url)
		if ok != tt.ok || (ok && string(got) != tt.want) {
			t.Errorf("%s: setImage = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNewKeepsTemplateComments(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, stderr, code := runIn(t, nil, false, "", "new", "demo", "--template", "dev"); code != 0 {
		t.Fatalf("new: %d %s", code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "karapace.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := schema.TemplateByName("dev")
	if string(data) != tpl.Manifest || !strings.HasPrefix(tpl.Manifest, "#") {
		t.Errorf("the template was not written verbatim, comments included:\n%s", data)
	}
}
