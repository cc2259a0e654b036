module github.com/karapace/karapace/store

go 1.26

require (
	github.com/karapace/karapace/schema v0.0.0
)

replace (
	github.com/karapace/karapace/schema => ../schema
)
