package sip_test

import (
	"context"
	"log/slog"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/sip"
)

// Example_routing shows how hotlined makes the sip plane the router's
// dialer: the registrar checks agents against routing's store, REFERs and
// the agents' *1/*2/*3 codes go through routing's directory (toll-fraud
// guard), an allowed REFER is carried out by the router, and *7 flags the
// caller in the abuse service. (Compiled, not run.)
func Example_routing() {
	var (
		ctx      = context.Background()
		eng      *media.Engine
		lib      *prompts.Library
		handler  sip.Handler
		log      *slog.Logger
		rcfg     routing.Config
		rstore   *routing.SQLStore // routing.OpenStore(...)
		router   *routing.Router   // routing.New(routing.Options{..., Dialer: dialer})
		dialer   *routing.LateDialer
		abuseSvc *abuse.Service
	)
	srv, err := sip.New(sip.Config{
		Listen: "127.0.0.1:5060", Engine: eng, Prompts: lib, Handler: handler, Logger: log,
		Credentials:   rstore,                // REGISTER digest against the agents' HA1
		Realm:         routing.DefaultRealm,  // the realm the store hashed with
		HotlineNumber: routing.ServiceNumber, // From of outbound legs unless PassCaller
		Destinations:  routing.NewDirectory(rcfg.Destinations, log),
		Transfers:     router, // an allowed REFER: router.Transfer(ctx, call, id, "refer")
		Flagger: sip.FlaggerFunc(func(ctx context.Context, callID, agent string) error {
			_, err := abuseSvc.Flag(ctx, callID, agent, abuse.KindHarassment, "agent keyed *7")
			return err
		}),
	})
	if err != nil {
		return
	}
	if err := srv.Start(ctx); err != nil {
		return
	}
	dialer.Set(srv) // RingAgent, DialOut, Bridge
}
