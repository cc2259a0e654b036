package remote_test

import (
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
)

func TestMemoryConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Harness {
		m := remote.NewMemory()
		return remotetest.Harness{Backend: m, Tamper: m.Tamper}
	})
}
