module github.com/karapace/karapace/cli

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/karapace/karapace/core v0.0.0
	github.com/karapace/karapace/remote v0.0.0
	github.com/karapace/karapace/runtime v0.0.0
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
	github.com/karapace/karapace/tui v0.0.0-00010101000000-000000000000
	github.com/spf13/cobra v1.10.2
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.44.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.6 // indirect
	github.com/gdamore/encoding v1.0.1 // indirect
	github.com/gdamore/tcell/v2 v2.13.10 // indirect
	github.com/gofrs/flock v0.13.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/lucasb-eyer/go-colorful v1.3.0 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/opencontainers/runtime-spec v1.2.1 // indirect
	github.com/rivo/tview v0.42.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/schollz/progressbar/v3 v3.19.1
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
	golang.org/x/text v0.44.0 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)

replace (
	github.com/karapace/karapace/core => ../core
	github.com/karapace/karapace/remote => ../remote
	github.com/karapace/karapace/runtime => ../runtime
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
	github.com/karapace/karapace/tui => ../tui
)
