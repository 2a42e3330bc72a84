package k8stest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// stopGrace is how long a component gets between SIGTERM and SIGKILL. The
// control plane's state is thrown away, so a clean shutdown buys nothing
// beyond quiet logs; do not wait long for it.
const stopGrace = 3 * time.Second

// poll calls check every interval until it reports done, one of procs
// exits or ctx ends. check's last error explains a timeout.
func poll(ctx context.Context, interval time.Duration, procs []*testproc.Proc, check func() (bool, error)) error {
	for {
		ok, err := check()
		if ok {
			return nil
		}
		for _, p := range procs {
			if p.Exited() {
				return testproc.ExitError(p)
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("condition not met")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out: %w", err)
			}
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
