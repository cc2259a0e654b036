package cli

import "testing"

// The terminal announcements of enter, byte for byte as the original writes them.
func TestEnterBanners(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	want := "\x1b]777;container;push;karapace-0123456789ab;karapace;" + id + "\x1b\\" +
		"\x1b[1;36m[karapace]\x1b[0m entering \x1b[1mrolling\x1b[0m (0123456789ab) as \x1b[1mkarapace-0123456789ab\x1b[0m\n"
	if got := enterBanner(id, "", "rolling"); got != want {
		t.Errorf("enter banner\n got %q\nwant %q", got, want)
	}
	if got := exitBanner("0123456789ab"); got != "\x1b]777;container;pop;;\x1b\\\x1b[1;36m[karapace]\x1b[0m exited environment 0123456789ab\n" {
		t.Errorf("exit banner %q", got)
	}
	named := "\x1b]777;container;push;karapace-0123456789ab;karapace;" + id + "\x1b\\" +
		"\x1b[1;36m[karapace]\x1b[0m entering \x1b[1mweb\x1b[0m (rolling, 0123456789ab) as \x1b[1mkarapace-0123456789ab\x1b[0m\n"
	if got := enterBanner(id, "web", "rolling"); got != named {
		t.Errorf("named enter banner\n got %q\nwant %q", got, named)
	}
}
