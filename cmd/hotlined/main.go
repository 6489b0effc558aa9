// Command hotlined is the hotline server: SIP (or Asterisk ARI), the IVR,
// the case store and the HTTP API. See docs/configuration.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cq12345/hotline/server"
)

func main() {
	cfg, parser, err := server.Parse("hotlined", os.Args[1:], os.Environ())
	if err != nil {
		if parser != nil {
			parser.Errorf("%s", err)
		} else {
			fmt.Fprintln(os.Stderr, "hotlined:", err)
		}
		os.Exit(2)
	}
	log := server.NewLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := server.Run(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("hotlined stopped", "err", err)
		os.Exit(1)
	}
}
