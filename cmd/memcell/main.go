// Command memcell is the memcell program: "memcell serve" runs the REST
// service over the primary and its KV mirror (the embedded default when
// nothing is configured); "memcell kv stats|sync|verify|repair" report on
// the mirror and bring it back in line with the primary, "memcell kv
// recover" restores the primary from it; "memcell version"
// prints the build. The wiring of the stores, the configuration (flags,
// environment, config file) and the exit codes live here; everything else
// is in the packages (docs/architecture.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcell:", err)
		os.Exit(exitCode(err))
	}
}
