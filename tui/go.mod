module github.com/karapace/karapace/tui

go 1.26.0

require (
	github.com/gdamore/tcell/v2 v2.13.10
	github.com/karapace/karapace/core v0.0.0
	github.com/karapace/karapace/runtime v0.0.0
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
	github.com/rivo/tview v0.42.0
	github.com/rivo/uniseg v0.4.7
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/gdamore/encoding v1.0.1 // indirect
	github.com/gofrs/flock v0.13.0 // indirect
	github.com/karapace/karapace/remote v0.0.0 // indirect
	github.com/klauspost/cpuid/v2 v2.0.9 // indirect
	github.com/lucasb-eyer/go-colorful v1.3.0 // indirect
	golang.org/x/image v0.48.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.37.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)

replace (
	github.com/karapace/karapace/core => ../core
	github.com/karapace/karapace/remote => ../remote
	github.com/karapace/karapace/runtime => ../runtime
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
)
