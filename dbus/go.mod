module github.com/karapace/karapace/dbus

go 1.26

require (
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
	github.com/karapace/karapace/runtime v0.0.0
	github.com/karapace/karapace/remote v0.0.0
	github.com/karapace/karapace/core v0.0.0
)

replace (
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
	github.com/karapace/karapace/runtime => ../runtime
	github.com/karapace/karapace/remote => ../remote
	github.com/karapace/karapace/core => ../core
)
