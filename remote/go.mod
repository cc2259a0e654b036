module github.com/karapace/karapace/remote

go 1.26

require (
	github.com/karapace/karapace/schema v0.0.0
	github.com/karapace/karapace/store v0.0.0
)

replace (
	github.com/karapace/karapace/schema => ../schema
	github.com/karapace/karapace/store => ../store
)
