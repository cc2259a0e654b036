module github.com/karapace/karapace/remote

go 1.26.0

require (
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/gofrs/flock v0.13.0 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	golang.org/x/sys v0.50.0 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)

replace (
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
)
