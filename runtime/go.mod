module github.com/karapace/karapace/runtime

go 1.26.0

require (
	github.com/karapace/karapace/schema v0.0.0
	github.com/google/renameio/v2 v2.0.2
	github.com/klauspost/compress v1.20.4
	github.com/opencontainers/runtime-spec v1.2.1
	github.com/ulikunitz/xz v0.5.17
	golang.org/x/net v0.63.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)

replace (
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
)
