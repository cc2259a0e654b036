package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--version"}, strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), Version) {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
