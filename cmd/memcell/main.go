// Command memcell is the memcell program. This version opens KV stores by URL
// and reports on them; the service and the sync, verify and repair tools
// arrive as further subcommands.
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
