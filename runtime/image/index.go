package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

// DefaultServer is the LXC image server; KARAPACE_IMAGE_SERVER overrides it.
const DefaultServer = "https://images.linuxcontainers.org/images"

// ServerEnv is the environment variable that overrides DefaultServer.
const ServerEnv = "KARAPACE_IMAGE_SERVER"

// lxcArch maps GOARCH to the architecture names the LXC image server uses.
var lxcArch = map[string]string{
	"amd64":   "amd64",
	"arm64":   "arm64",
	"386":     "i386",
	"arm":     "armhf",
	"ppc64le": "ppc64el",
	"s390x":   "s390x",
	"riscv64": "riscv64",
	"loong64": "loongarch64",
}

// HostArch returns the LXC architecture name of the running binary's architecture.
func HostArch() string { return ArchFor(runtime.GOARCH) }

// ArchFor maps a GOARCH value to the LXC architecture name; unknown values pass through.
func ArchFor(goarch string) string {
	if a, ok := lxcArch[goarch]; ok {
		return a
	}
	return goarch
}

// IndexURL is the directory of an alias's builds on the server:
// {server}/{distro}/{release}/{arch}/default/.
func IndexURL(server string, ref Ref, arch string) string {
	return strings.TrimRight(server, "/") + "/" + ref.Distro + "/" + ref.Release + "/" + arch + "/default/"
}

// BuildURL is the rootfs tarball of one build, with ':' escaped as the server lists it.
func BuildURL(indexURL, build string) string {
	return indexURL + strings.ReplaceAll(url.PathEscape(build), ":", "%3A") + "/rootfs.tar.xz"
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// ParseIndex returns the build names listed in an index page, oldest first. A build is a
// link whose unescaped name (trailing slash removed) starts with a digit and is at least
// 8 characters long, like "20250520_05:24".
func ParseIndex(page []byte) []string {
	seen := map[string]bool{}
	var builds []string
	for _, m := range hrefRE.FindAllSubmatch(page, -1) {
		name := strings.TrimSuffix(string(m[1]), "/")
		if u, err := url.PathUnescape(name); err == nil {
			name = u
		}
		if len(name) < 8 || name[0] < '0' || name[0] > '9' || strings.ContainsAny(name, "/?#") || seen[name] {
			continue
		}
		seen[name] = true
		builds = append(builds, name)
	}
	sort.Strings(builds)
	return builds
}

// newestBuildURL fetches the index of ref and returns the tarball URL of its newest
// build. Transient failures are retried like downloads.
func (c *Cache) newestBuildURL(ctx context.Context, ref Ref) (string, error) {
	index := IndexURL(c.server, ref, c.arch)
	var page []byte
	var err error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("image index %s: %w", index, ctx.Err())
			case <-time.After(c.retryDelay << (attempt - 2)):
			}
		}
		var retry bool
		page, retry, err = c.fetchIndex(ctx, index)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
		c.log.Debug("retrying image index", "url", index, "attempt", attempt+1, "error", err)
	}
	if err != nil {
		return "", err
	}
	builds := ParseIndex(page)
	if len(builds) == 0 {
		return "", fmt.Errorf("%w: no builds of %s for %s listed at %s", ErrImageNotFound, ref.Display, c.arch, index)
	}
	return BuildURL(index, builds[len(builds)-1]), nil
}

func (c *Cache) fetchIndex(ctx context.Context, index string) (page []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, index, nil)
	if err != nil {
		return nil, false, fmt.Errorf("image index %s: %w", index, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, transientNetError(err), fmt.Errorf("%w: image index %s: %s", ErrDownload, index, describeNetError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		herr := &HTTPError{URL: index, StatusCode: resp.StatusCode, Status: resp.Status}
		return nil, herr.transient(), herr
	}
	page, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, true, fmt.Errorf("%w: image index %s: %s", ErrDownload, index, describeNetError(err))
	}
	return page, false, nil
}
