package sip

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
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
