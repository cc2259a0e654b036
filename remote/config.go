package remote

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Config says where the remote is and how to authenticate. Its file form is the
// original's remote.json: {"url": "...", "auth_token": "..."}; "token" is accepted as a
// synonym when reading.
type Config struct {
	URL   string `json:"url"`
	Token string `json:"auth_token,omitempty"`
}

type configFile struct {
	URL       string  `json:"url"`
	AuthToken *string `json:"auth_token,omitempty"`
	Token     *string `json:"token,omitempty"`
}

// ConfigPath returns the default config file: $XDG_CONFIG_HOME/karapace/remote.json, or
// $HOME/.config/karapace/remote.json when XDG_CONFIG_HOME is unset or not absolute.
func ConfigPath(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "karapace", "remote.json"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("%w: HOME not set", ErrConfig)
	}
	return filepath.Join(home, ".config", "karapace", "remote.json"), nil
}

// LoadConfig reads a config file. A missing file is an error wrapping both ErrConfig and
// fs.ErrNotExist.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var f configFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Config{}, fmt.Errorf("%w: invalid remote config %s: %v", ErrConfig, path, err)
	}
	c := Config{URL: strings.TrimRight(f.URL, "/")}
	switch {
	case f.AuthToken != nil:
		c.Token = *f.AuthToken
	case f.Token != nil:
		c.Token = *f.Token
	}
	return c, nil
}

// SaveConfig writes c to path as pretty JSON with mode 0600 (it may hold a token),
// creating parent directories with mode 0700.
func SaveConfig(path string, c Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	out := configFile{URL: strings.TrimRight(c.URL, "/")}
	if c.Token != "" {
		out.AuthToken = &c.Token
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".remote.json.*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// ResolveConfig is the configuration a command uses: the config file, with its URL
// replaced by urlFlag when that is set. The file's token is kept when the flag names the
// same URL as the file (so --remote does not drop credentials for the configured server,
// yet never sends them to another one). A missing file is fine when urlFlag is set.
func ResolveConfig(urlFlag string, getenv func(string) string) (Config, error) {
	urlFlag = strings.TrimRight(urlFlag, "/")
	path, perr := ConfigPath(getenv)
	var c Config
	var err error
	if perr == nil {
		c, err = LoadConfig(path)
	} else {
		err = perr
	}
	if urlFlag == "" {
		if err != nil {
			return Config{}, fmt.Errorf("no --remote and no config: %w", err)
		}
		if c.URL == "" {
			return Config{}, fmt.Errorf("%w: %s has no url", ErrConfig, path)
		}
		return c, nil
	}
	if err != nil || c.URL != urlFlag {
		return Config{URL: urlFlag}, nil
	}
	return c, nil
}

// Dial is what a command does to reach its remote: ResolveConfig, then NewHTTP with a
// transport sized for blobs. log receives warnings (may be nil).
func Dial(urlFlag string, getenv func(string) string, log *slog.Logger) (*HTTP, error) {
	c, err := ResolveConfig(urlFlag, getenv)
	if err != nil {
		return nil, err
	}
	return NewHTTP(c, HTTPOptions{Logger: log})
}
