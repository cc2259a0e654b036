module github.com/karapace/karapace/dbus

go 1.26

require (
	github.com/godbus/dbus/v5 v5.2.4
	github.com/karapace/karapace/core v0.0.0
	github.com/karapace/karapace/runtime v0.0.0
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/gofrs/flock v0.13.0 // indirect
	github.com/karapace/karapace/remote v0.0.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/klauspost/cpuid/v2 v2.0.9 // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
	golang.org/x/sys v0.50.0 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)

replace (
	github.com/karapace/karapace/core => ../core
	github.com/karapace/karapace/remote => ../remote
	github.com/karapace/karapace/runtime => ../runtime
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
)
