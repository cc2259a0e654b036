package pkgmgr_test

import (
	"io"

	"github.com/karapace/karapace/schema"
)

func hashFile(r io.Reader) (string, int64, error) {
	d, n, err := schema.HashReader(r)
	return d.String(), n, err
}
