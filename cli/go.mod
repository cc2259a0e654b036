module github.com/karapace/karapace/cli

go 1.26

require (
	github.com/karapace/karapace/core v0.0.0
	github.com/karapace/karapace/remote v0.0.0
	github.com/karapace/karapace/runtime v0.0.0
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
	github.com/karapace/karapace/tui v0.0.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace (
	github.com/karapace/karapace/core => ../core
	github.com/karapace/karapace/remote => ../remote
	github.com/karapace/karapace/runtime => ../runtime
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
	github.com/karapace/karapace/tui => ../tui
)
