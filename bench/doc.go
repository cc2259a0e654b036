// Package bench holds Karapace's reliability and performance suites. Both drive the
// built binaries (`karapace`, `karapace-server`) as a user would, never the packages
// behind them: the reliability tests (kill -9 soak, full disk, concurrent processes) run
// in `make test`; the performance harness `cmd/karabench` runs in `make bench` and
// compares, side by side on the same machine, karapace with its peers.
//
// The package itself is the harness's toolbox: running a command and measuring its time
// and peak memory, medians and ratios, and synthesizing large stores through the store
// package's own API. It imports schema and store only; it must not import core, runtime
// or the frontends (what it measures is the binaries).
package bench
