module github.com/karapace/karapace/schema

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/zeebo/blake3 v0.2.4
	golang.org/x/sys v0.50.0
	lukechampine.com/blake3 v1.4.1
)

require github.com/klauspost/cpuid/v2 v2.0.12 // indirect
