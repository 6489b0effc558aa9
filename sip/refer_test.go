package sip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/routing"
)

type transferRec struct {
	mu  sync.Mutex
	got []string
}

func (r *transferRec) Transfer(_ context.Context, c ivr.Call, dest, source string) (ivr.Outcome, error) {
	r.mu.Lock()
	r.got = append(r.got, dest+"/"+source)
	r.mu.Unlock()
	return ivr.Outcome{}, nil
}

// TestReferGuard: a REFER naming a configured destination (by number) is
// accepted and handed to the router; anything else is refused with 403 and
// logged (toll-fraud guard).
func TestReferGuard(t *testing.T) {
	guardLog := &logBuffer{}
	dir := routing.NewDirectory([]routing.Destination{{ID: "12315", Number: "12315"}, {ID: "edu", Number: "02363862437"}},
		slog.New(slog.NewTextHandler(guardLog, nil)))
	tr := &transferRec{}
	answered := make(chan ivr.Call, 1)
	srv := startServer(t, holdHandler(answered), func(_ *media.Config, c *Config) {
		c.Destinations, c.Transfers = dir, tr
	})
	u := newUAC(t, srv.Addr(), "udp")
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv")); r.StatusCode != 200 {
		t.Fatalf("INVITE: %d", r.StatusCode)
	}
	u.ack(hotlineURI, "", "")
	<-answered
	for _, tc := range []struct {
		referTo string
		want    int
	}{
		{"<sip:110@127.0.0.1>", 403},
		{"<sip:0085212345678@127.0.0.1>", 403},
		{"<tel:+8613800138000>", 403},
		{"<sip:02363862437@127.0.0.1>", 202},
	} {
		u.cseq++
		u.request("REFER", hotlineURI, u.cseq, "REFER", newBranch(), []string{"Refer-To: " + tc.referTo}, "", "")
		if r := u.response("REFER", 200, 5*time.Second); int(r.StatusCode) != tc.want {
			t.Errorf("REFER to %s: %d, want %d", tc.referTo, r.StatusCode, tc.want)
		}
	}
	waitFor(t, "transfer handed over", 2*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.got) == 1
	})
	if tr.got[0] != "edu/refer" {
		t.Errorf("transfer %q, want edu/refer", tr.got[0])
	}
	if n := strings.Count(guardLog.String(), "toll-fraud"); n != 3 {
		t.Errorf("%d refusals logged, want 3:\n%s", n, guardLog.String())
	}
	if strings.Contains(guardLog.String(), "13800138000") {
		t.Error("a refused number was logged unscrubbed")
	}
	if r := u.bye(hotlineURI); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
}

// TestReferFromBridgedAgent: the agent's phone sends a blind transfer
// (REFER to 12315) while bridged with the caller. The plane does not start
// a transfer of its own beside the flow: the Bridge returns a
// routing.TransferRequest for the router that owns the caller; a REFER
// naming an unconfigured number is refused and the bridge goes on.
func TestReferFromBridgedAgent(t *testing.T) {
	for _, tc := range []struct {
		name, referTo string
		status        int
		wantTransfer  bool
	}{
		{"configured", "sip:12315@hotline", 202, true},
		{"not configured", "sip:0085212345678@hotline", 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &transferRec{}
			dir := routing.NewDirectory([]routing.Destination{{ID: "12315", Number: "12315"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			bridged := make(chan error, 1)
			var srvp atomic.Pointer[testServer]
			srv := startServer(t, ringAndBridge(&srvp, "1001", bridged), withRegistrar(newCreds(map[string]string{"1001": "pw"})), func(_ *media.Config, c *Config) {
				c.Destinations, c.Transfers = dir, tr
			})
			srvp.Store(srv)
			agentRep := make(chan phone.Report, 1)
			agentPhone(t, srv, "1001", "pw", phone.AnswerConfig{
				Script: phone.Script{ReferTo: tc.referTo, ReferAfter: 500 * time.Millisecond},
				OnReport: func(r phone.Report) {
					if r.Answered {
						agentRep <- r
					}
				},
			})
			caller := newPhone(t)
			hang := 3 * time.Second
			rep := caller.Run(context.Background(), phone.DialOptions{Target: srv.Addr().String(), To: "12345", From: "13800138000"},
				phone.Script{HangupAfter: hang})
			if rep.Error != "" || !rep.Answered {
				t.Fatalf("caller: %+v", rep)
			}
			err := <-bridged
			var req *routing.TransferRequest
			if got := errors.As(err, &req); got != tc.wantTransfer {
				t.Fatalf("Bridge: %v; want a transfer request: %v", err, tc.wantTransfer)
			}
			if tc.wantTransfer && (req.Destination != "12315" || !strings.Contains(req.By, "1001")) {
				t.Errorf("transfer request %+v, want 12315 by agent 1001", req)
			}
			select {
			case ar := <-agentRep:
				if ar.ReferStatus != tc.status {
					t.Errorf("REFER answered %d, want %d", ar.ReferStatus, tc.status)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no agent report")
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if len(tr.got) != 0 {
				t.Errorf("the plane ran a transfer of its own beside the bridge: %v", tr.got)
			}
		})
	}
}
