package phone

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// testUAS is a minimal IVR written with sipgo and media, standing in for
// hotlined: it answers INVITEs to 12345 (404 otherwise), plays
// first-prompt then menu-prompt, and on a digit (RFC 4733 or SIP INFO)
// stops the menu (barge-in), plays en/digit-<d>, and then hangs up when
// hangupAfterDigit. ringFor delays the answer (180 Ringing meanwhile).
type testUAS struct {
	t                *testing.T
	lib              *prompts.Library
	engine           *media.Engine
	ua               *sipgo.UserAgent
	dsc              *sipgo.DialogServerCache
	addr             string
	ringFor          time.Duration
	hangupAfterDigit bool
	firstPrompt      string
	menuPrompt       string

	mu     sync.Mutex
	calls  map[string]*uasCall // by Call-ID
	digits []string            // "mode:digit" as received
	holds  []string            // directions of re-INVITE offers received
	wg     sync.WaitGroup
}

type uasCall struct {
	dlg    *sipgo.DialogServerSession
	sess   *media.Session
	codec  prompts.Codec
	digits chan string
}

func newTestUAS(t *testing.T, lib *prompts.Library, configure ...func(*testUAS)) *testUAS {
	t.Helper()
	u := &testUAS{t: t, lib: lib, calls: map[string]*uasCall{}, firstPrompt: "en/digit-5", menuPrompt: "en/message-saved"}
	for _, f := range configure {
		f(u) // before serving: the handlers read the fields
	}
	var err error
	u.engine, err = media.NewEngine(media.Config{IP: netip.MustParseAddr("127.0.0.1"), Sockets: 2, InactivityTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("test-uas"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(u.ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	// UDP and TCP on one port: the UDP port the system picks may be taken
	// for TCP by another process; try another.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u.addr = pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		pc.Close()
		if attempt == 20 {
			t.Fatal(err)
		}
	}
	cli, err := sipgo.NewClient(u.ua, sipgo.WithClientLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(u.addr)
	u.dsc = sipgo.NewDialogServerCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(ap.Port())}})
	srv.OnInvite(u.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if body := req.Body(); len(body) > 0 { // answer to our late offer
			if c := u.call(req); c != nil {
				if md, err := ParseSDP(body); err == nil {
					c.sess.SetRemote(md.Addr)
				}
			}
		}
		_ = u.dsc.ReadAck(req, tx)
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = u.dsc.ReadBye(req, tx) })
	srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		c := u.call(req)
		if c == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		for _, line := range strings.Split(string(req.Body()), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Signal="); ok && v != "" {
				u.digit(c, "info", v[0])
			}
		}
	})
	u.wg.Add(2)
	go func() { defer u.wg.Done(); _ = srv.ServeUDP(pc) }()
	go func() { defer u.wg.Done(); _ = srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		_ = u.ua.Close()
		_ = pc.Close()
		_ = ln.Close()
		u.wg.Wait()
		_ = u.engine.Close()
	})
	return u
}

func (u *testUAS) call(req *sip.Request) *uasCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[req.CallID().Value()]
}

func (u *testUAS) digit(c *uasCall, mode string, d byte) {
	u.mu.Lock()
	u.digits = append(u.digits, mode+":"+string(d))
	u.mu.Unlock()
	select {
	case c.digits <- string(d):
	default:
	}
}

func (u *testUAS) reinvites() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.holds...)
}

func (u *testUAS) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.digits...)
}

func (u *testUAS) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") { // re-INVITE
		c := u.call(req)
		md, err := ParseSDP(req.Body())
		if c == nil || err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		u.mu.Lock()
		u.holds = append(u.holds, md.Direction)
		u.mu.Unlock()
		body, _ := BuildSDP(1, 2, c.sess.LocalAddr(), []prompts.Codec{c.codec}, md.DTMF, answerDirection(md.Direction))
		res := sip.NewSDPResponseFromRequest(req, body)
		ap := netip.MustParseAddrPort(u.addr)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(ap.Port())}})
		_ = tx.Respond(res)
		return
	}
	dlg, err := u.dsc.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	defer dlg.Close()
	if req.Recipient.User != "12345" {
		_ = dlg.Respond(404, "Not Found", nil)
		return
	}
	c := &uasCall{dlg: dlg, digits: make(chan string, 4)}
	var offer MediaDesc
	late := len(req.Body()) == 0
	if !late {
		if offer, err = ParseSDP(req.Body()); err != nil {
			_ = dlg.Respond(488, "Not Acceptable Here", nil)
			return
		}
	} else {
		offer = MediaDesc{Codecs: []prompts.Codec{prompts.PCMA, prompts.PCMU}, DTMF: 101}
	}
	c.codec = offer.Codecs[0]
	c.sess, err = u.engine.NewSession(media.SessionConfig{
		Remote: offer.Addr, PayloadType: uint8(c.codec), DTMFPayloadType: offer.DTMF,
		OnDigit: func(d byte) { u.digit(c, "rfc4733", d) },
	})
	if err != nil {
		_ = dlg.Respond(500, "Server Internal Error", nil)
		return
	}
	defer c.sess.Close()
	u.mu.Lock()
	u.calls[req.CallID().Value()] = c
	u.mu.Unlock()

	if u.ringFor > 0 {
		_ = dlg.Respond(180, "Ringing", nil)
		select {
		case <-time.After(u.ringFor):
		case <-dlg.Context().Done():
			return // cancelled
		}
	}
	codecs := []prompts.Codec{c.codec}
	if late {
		codecs = offer.Codecs
	}
	answer, err := BuildSDP(1, 1, c.sess.LocalAddr(), codecs, offer.DTMF, "")
	if err != nil {
		u.t.Error(err)
		return
	}
	if err := dlg.RespondSDP(answer); err != nil {
		return
	}
	play := func(key string) <-chan bool {
		done := make(chan bool, 1)
		frames, ok := u.lib.Frames(key, c.codec)
		if !ok {
			u.t.Errorf("uas: no prompt %s", key)
		}
		c.sess.Play(frames, media.PlayOptions{OnDone: func(completed bool) { done <- completed }})
		return done
	}
	first := play(u.firstPrompt)
	var d string
	select {
	case <-first:
		select {
		case <-play(u.menuPrompt):
			select {
			case d = <-c.digits:
			case <-dlg.Context().Done():
				return
			}
		case d = <-c.digits:
		case <-dlg.Context().Done():
			return
		}
	case d = <-c.digits:
	case <-dlg.Context().Done():
		return
	}
	c.sess.Stop() // barge-in
	select {
	case <-play("en/digit-" + d):
	case <-dlg.Context().Done():
		return
	}
	if u.hangupAfterDigit {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = dlg.Bye(ctx)
		return
	}
	<-dlg.Context().Done()
}
