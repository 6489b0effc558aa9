package sip

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	libOnce sync.Once
	libVal  *prompts.Library
	libErr  error
)

func testPrompts(t testing.TB) *prompts.Library {
	t.Helper()
	libOnce.Do(func() { libVal, libErr = prompts.Load(prompts.Embedded()) })
	if libErr != nil {
		t.Fatal(libErr)
	}
	return libVal
}

// logBuffer collects the server's log lines (to scan them for caller
// numbers).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	*Server
	engine *media.Engine
	logs   *logBuffer
}

type serverOpt func(*media.Config, *Config)

// startServer runs a Server with a real media engine on loopback.
func startServer(t testing.TB, h HandlerFunc, opts ...serverOpt) *testServer {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mcfg := media.Config{IP: netip.MustParseAddr("127.0.0.1"), Sockets: 2, Shards: 1, InactivityTimeout: 30 * time.Second, Logger: logger}
	cfg := Config{Listen: "127.0.0.1:0", Prompts: testPrompts(t), Handler: h, Logger: logger}
	for _, o := range opts {
		o(&mcfg, &cfg)
	}
	eng, err := media.NewEngine(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine = eng
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		_ = eng.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "13800138000") {
			t.Errorf("unmasked caller number in logs:\n%s", logs.String())
		}
	})
	return &testServer{Server: srv, engine: eng, logs: logs}
}

const hotlineURI = "sip:12345@127.0.0.1"

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCallPromptsDigitsBye: the full path. A prompt's RTP payloads equal
// its frames; an RFC 4733 digit barges in on the menu within one packet
// time and reaches ReadDigit; a SIP INFO digit reaches ReadDigit; the
// caller's BYE ends the call.
func TestCallPromptsDigitsBye(t *testing.T) {
	lib := testPrompts(t)
	greeting, _ := lib.Frames("zh-CN/greeting", prompts.PCMA)
	menu, _ := lib.Frames("zh-CN/main-menu", prompts.PCMA)
	type result struct {
		what  string
		digit byte
		err   error
	}
	results := make(chan result, 8)
	var info ivr.CallInfo
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	telemetryOpt := func(_ *media.Config, c *Config) {
		c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	}
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		info = c.Info()
		if err := c.Answer(ctx); err != nil {
			results <- result{what: "answer", err: err}
			return
		}
		err := c.Play(ctx, []string{"zh-CN/greeting"}, false)
		results <- result{what: "greeting", err: err}
		err = c.Play(ctx, []string{"zh-CN/main-menu"}, true)
		results <- result{what: "menu", err: err}
		d, err := c.ReadDigit(ctx, 5*time.Second)
		results <- result{what: "digit1", digit: d, err: err}
		err = c.Play(ctx, []string{"zh-CN/digit-5"}, true)
		results <- result{what: "next", err: err}
		d, err = c.ReadDigit(ctx, 5*time.Second)
		results <- result{what: "digit2", digit: d, err: err}
		<-c.Done()
		_, err = c.ReadDigit(ctx, time.Second)
		results <- result{what: "after-bye", err: err}
	}, telemetryOpt)
	u := newUAC(t, srv.Addr(), "udp")
	res := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv"))
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	ans, remote := sdpRemote(t, res.Body())
	if ans.Codec != prompts.PCMA || ans.PayloadType != 8 || !ans.HasDTMF || ans.DTMFPayloadType != 101 {
		t.Fatalf("answer: %+v", ans)
	}
	u.ack(hotlineURI, "", "")

	// The greeting arrives frame by frame, then the menu starts.
	pkts := u.readRTP(30*time.Second, func(p rtpPacket) bool { return len(p.payload) == 160 && bytes.Equal(p.payload, menu[3]) })
	if len(pkts) < len(greeting) {
		t.Fatalf("got %d packets, want at least %d", len(pkts), len(greeting))
	}
	for i, f := range greeting {
		if !bytes.Equal(pkts[i].payload, f) {
			t.Fatalf("packet %d payload differs from greeting frame %d", i, i)
		}
		if pkts[i].h.PayloadType != 8 {
			t.Fatalf("packet %d PT %d", i, pkts[i].h.PayloadType)
		}
		if i > 0 && pkts[i].h.SequenceNumber != pkts[i-1].h.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, pkts[i].h.SequenceNumber, pkts[i-1].h.SequenceNumber)
		}
		if i > 0 && pkts[i].h.Timestamp-pkts[i-1].h.Timestamp != 160 {
			t.Fatalf("packet %d: timestamp step %d", i, pkts[i].h.Timestamp-pkts[i-1].h.Timestamp)
		}
	}
	if r := <-results; r.what != "greeting" || r.err != nil {
		t.Fatalf("greeting: %+v", r)
	}
	if info.Caller != "13800138000" || info.Dialled != "12345" || info.Plane != "sip" {
		t.Fatalf("info: %+v", info)
	}

	// RFC 4733 digit '5': first packet of the event, marker set.
	sent := time.Now()
	u.sendRTP(remote, rtp.Header{Version: 2, PayloadType: 101, Marker: true, SequenceNumber: 1, Timestamp: 8000, SSRC: 0x1234},
		[]byte{5, 10, 0, 160})
	// Barge-in stops the menu within one packet time: at most the packet
	// of the tick that was due when the digit arrived gets out; then the
	// next prompt (digit-5) starts.
	next, _ := lib.Frames("zh-CN/digit-5", prompts.PCMA)
	late := u.readRTP(2*time.Second, func(p rtpPacket) bool { return bytes.Equal(p.payload, next[0]) })
	if len(late) == 0 || !bytes.Equal(late[len(late)-1].payload, next[0]) {
		t.Fatalf("the next prompt never started (%d packets)", len(late))
	}
	var menuAfter int
	for _, p := range late[:len(late)-1] {
		if slices.ContainsFunc(menu, func(f []byte) bool { return bytes.Equal(f, p.payload) }) {
			menuAfter++
		}
	}
	if menuAfter > 1 {
		t.Errorf("barge-in: %d menu packets after the digit (want <= 1)", menuAfter)
	}
	t.Logf("barge-in: %d menu packet(s) after the digit; first packet of the next prompt %v after the digit was sent",
		menuAfter, late[len(late)-1].at.Sub(sent))
	if r := <-results; r.what != "menu" || r.err != nil {
		t.Fatalf("menu: %+v", r)
	}
	if r := <-results; r.what != "digit1" || r.err != nil || r.digit != '5' {
		t.Fatalf("digit1: %+v", r)
	}
	if r := <-results; r.what != "next" || r.err != nil {
		t.Fatalf("next prompt: %+v", r)
	}
	// Retransmitted start and end packets of the same event add nothing.
	u.sendRTP(remote, rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2, Timestamp: 8000, SSRC: 0x1234}, []byte{5, 10, 1, 64})
	u.sendRTP(remote, rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 3, Timestamp: 8000, SSRC: 0x1234}, []byte{5, 0x80 | 10, 3, 32})

	// SIP INFO digit '7' (application/dtmf-relay).
	if r := u.info(hotlineURI, "application/dtmf-relay", "Signal=7\r\nDuration=160\r\n"); r.StatusCode != 200 {
		t.Fatalf("INFO: %d", r.StatusCode)
	}
	if r := <-results; r.what != "digit2" || r.err != nil || r.digit != '7' {
		t.Fatalf("digit2: %+v (want the INFO digit; a duplicate RFC 4733 digit would show here)", r)
	}

	if r := u.bye(hotlineURI); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	if r := <-results; r.what != "after-bye" || !errors.Is(r.err, ivr.ErrHungUp) {
		t.Fatalf("after bye: %+v", r)
	}
	waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
	checkTelemetry(t, spans, reader)
}

// checkTelemetry: one "call" span with an "answer" child, the caller masked
// everywhere; metrics count the call and both DTMF modes.
func checkTelemetry(t *testing.T, spans *tracetest.SpanRecorder, reader *sdkmetric.ManualReader) {
	t.Helper()
	var call, answer sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "13800138000") {
				t.Errorf("span %s attribute %s carries the unmasked caller", s.Name(), a.Key)
			}
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				if strings.Contains(a.Value.Emit(), "13800138000") {
					t.Errorf("span %s event %s carries the unmasked caller", s.Name(), e.Name)
				}
			}
		}
		switch s.Name() {
		case "call":
			call = s
		case "answer":
			answer = s
		}
	}
	if call == nil || answer == nil {
		t.Fatalf("spans: call %v answer %v", call != nil, answer != nil)
	}
	if answer.Parent().SpanID() != call.SpanContext().SpanID() {
		t.Error("answer is not a child of call")
	}
	var masked bool
	for _, a := range call.Attributes() {
		if a.Key == "call.caller" && a.Value.AsString() == "138****8000" {
			masked = true
		}
	}
	if !masked {
		t.Errorf("call span lacks the masked caller: %v", call.Attributes())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					key := m.Name
					for _, k := range []attribute.Key{"outcome", "mode"} {
						if v, ok := p.Attributes.Value(k); ok {
							key += "{" + v.AsString() + "}"
						}
					}
					got[key] += p.Value
				}
			}
		}
	}
	want := map[string]int64{
		"hotline.calls.active": 0, "hotline.calls{completed}": 1,
		"hotline.dtmf.received{rfc4733}": 1, "hotline.dtmf.received{info}": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// TestHangupFromHandler: the IVR hangs up, the caller gets a BYE.
func TestHangupFromHandler(t *testing.T) {
	done := make(chan error, 1)
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		if err := c.Play(ctx, []string{"zh-CN/digit-1"}, false); err != nil {
			done <- err
			return
		}
		err := c.Hangup(ctx, "goodbye")
		select {
		case <-c.Done():
		default:
			err = errors.New("Done not closed after Hangup")
		}
		done <- err
	})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			u := newUAC(t, srv.Addr(), network)
			res := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv"))
			if res.StatusCode != 200 {
				t.Fatalf("INVITE: %d", res.StatusCode)
			}
			u.ack(hotlineURI, "", "")
			go func() {
				// Keep reading so the BYE is seen and answered.
				_, _ = u.read(5 * time.Second)
			}()
			select {
			case <-u.byes:
			case <-time.After(5 * time.Second):
				t.Fatal("no BYE from the server")
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
		})
	}
}

// TestCancelBeforeAnswer: CANCEL gets 200, the INVITE 487, the handler's
// context ends and Done closes.
func TestCancelBeforeAnswer(t *testing.T) {
	ended := make(chan string, 1)
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			ended <- "ctx not cancelled"
			return
		}
		select {
		case <-c.Done():
			ended <- "ok"
		case <-time.After(time.Second):
			ended <- "Done not closed"
		}
	})
	u := newUAC(t, srv.Addr(), "udp")
	u.cseq++
	branch := newBranch()
	u.request("INVITE", hotlineURI, u.cseq, "INVITE", branch, nil, "application/sdp", u.offerSDP("a=sendrecv"))
	if r := u.response("INVITE", 100, 2*time.Second); r.StatusCode != 100 {
		t.Fatalf("want 100 Trying, got %d", r.StatusCode)
	}
	u.request("CANCEL", hotlineURI, u.cseq, "CANCEL", branch, nil, "", "")
	var got200, got487 bool
	for !(got200 && got487) {
		msg, err := u.read(3 * time.Second)
		if err != nil {
			t.Fatalf("200/487: %v", err)
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			continue
		}
		switch {
		case res.CSeq().MethodName == sip.CANCEL && res.StatusCode == 200:
			got200 = true
		case res.CSeq().MethodName == sip.INVITE && res.StatusCode == 487:
			got487 = true
			u.toTag, _ = res.To().Params.Get("tag")
			u.request("ACK", hotlineURI, u.cseq, "ACK", branch, nil, "", "")
		case res.CSeq().MethodName == sip.INVITE && res.StatusCode >= 200:
			t.Fatalf("INVITE got %d, want 487", res.StatusCode)
		}
	}
	if s := <-ended; s != "ok" {
		t.Fatal(s)
	}
	waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// holdHandler answers and waits for the end of the call.
func holdHandler(answered chan<- ivr.Call) HandlerFunc {
	return func(ctx context.Context, c ivr.Call) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		answered <- c
		<-c.Done()
	}
}

// TestReinvite: hold (sendonly and c=0.0.0.0), unhold, a session refresh
// and a new remote RTP address keep the call up.
func TestReinvite(t *testing.T) {
	answered := make(chan ivr.Call, 1)
	srv := startServer(t, holdHandler(answered))
	u := newUAC(t, srv.Addr(), "udp")
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv")); r.StatusCode != 200 {
		t.Fatalf("INVITE: %d", r.StatusCode)
	}
	u.ack(hotlineURI, "", "")
	c := <-answered

	steps := []struct {
		name    string
		body    string
		wantDir Direction
	}{
		{"hold sendonly", u.offerSDP("a=sendonly"), RecvOnly},
		{"unhold", u.offerSDP("a=sendrecv"), SendRecv},
		{"hold inactive", u.offerSDP("a=inactive"), Inactive},
		{"hold c=0.0.0.0", strings.Replace(u.offerSDP("a=sendrecv"), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1), SendRecv},
		{"refresh", u.offerSDP("a=sendrecv"), SendRecv},
	}
	for _, st := range steps {
		r := u.invite(hotlineURI, nil, "application/sdp", st.body)
		if r.StatusCode != 200 {
			t.Fatalf("%s: re-INVITE got %d", st.name, r.StatusCode)
		}
		u.ack(hotlineURI, "", "")
		ans, err := ParseSDPOffer(r.Body())
		if err != nil {
			t.Fatalf("%s: answer: %v", st.name, err)
		}
		if ans.Direction != st.wantDir {
			t.Fatalf("%s: answer direction %s, want %s", st.name, ans.Direction, st.wantDir)
		}
		select {
		case <-c.Done():
			t.Fatalf("%s ended the call", st.name)
		default:
		}
	}

	// A new remote address: the prompt goes to the new port.
	r2, err := newRTPSocket()
	if err != nil {
		t.Fatal(err)
	}
	old := u.rtp
	u.rtp = r2
	defer old.Close()
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv")); r.StatusCode != 200 {
		t.Fatalf("move: %d", r.StatusCode)
	}
	u.ack(hotlineURI, "", "")
	go func() { _ = c.Play(context.Background(), []string{"zh-CN/digit-2"}, false) }()
	if pkts := u.readRTP(2*time.Second, func(rtpPacket) bool { return true }); len(pkts) == 0 {
		t.Fatal("no RTP at the new address")
	}
	// A re-INVITE with only G.729 is refused and the call stays.
	if r := u.invite(hotlineURI, nil, "application/sdp", sdpBody(u.rtpPort(), "18", "a=rtpmap:18 G729/8000")); r.StatusCode != 488 {
		t.Fatalf("G.729 re-INVITE: %d, want 488", r.StatusCode)
	}
	if r := u.bye(hotlineURI); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// TestLateOffer: an INVITE without SDP gets our offer in the 200; the
// answer in the ACK picks PCMU, and the prompt arrives as PCMU.
func TestLateOffer(t *testing.T) {
	lib := testPrompts(t)
	want, _ := lib.Frames("zh-CN/digit-3", prompts.PCMU)
	played := make(chan error, 1)
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		played <- c.Play(ctx, []string{"zh-CN/digit-3"}, false)
		<-c.Done()
	})
	u := newUAC(t, srv.Addr(), "udp")
	res := u.invite(hotlineURI, nil, "", "")
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	offer, _ := sdpRemote(t, res.Body())
	if offer.Codec != prompts.PCMA || !offer.HasDTMF {
		t.Fatalf("our offer: %+v", offer)
	}
	if !strings.Contains(string(res.Body()), "m=audio") || !strings.Contains(string(res.Body()), "RTP/AVP 8 0 101") {
		t.Fatalf("offer body: %s", res.Body())
	}
	u.ack(hotlineURI, "application/sdp", sdpBody(u.rtpPort(), "0 101", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000"))
	n := 0
	pkts := u.readRTP(10*time.Second, func(rtpPacket) bool { n++; return n == len(want) })
	if err := <-played; err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, u.readRTP(200*time.Millisecond, nil)...)
	if len(pkts) != len(want) {
		t.Fatalf("got %d packets, want %d", len(pkts), len(want))
	}
	for i, p := range pkts {
		if p.h.PayloadType != 0 || !bytes.Equal(p.payload, want[i]) {
			t.Fatalf("packet %d: PT %d, payload equal %v", i, p.h.PayloadType, bytes.Equal(p.payload, want[i]))
		}
	}
	if r := u.bye(hotlineURI); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
}

func newRTPSocket() (*net.UDPConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

// TestRejections: numbers, codecs, methods and headers we refuse.
func TestRejections(t *testing.T) {
	srv := startServer(t, func(ctx context.Context, c ivr.Call) { _ = c.Answer(ctx) })
	cases := []struct {
		name   string
		ruri   string
		extra  []string
		ctype  string
		body   func(u *uac) string
		status int
	}{
		{"other number", "sip:12346@127.0.0.1", nil, "application/sdp", func(u *uac) string { return u.offerSDP("") }, 404},
		{"only G.729", hotlineURI, nil, "application/sdp", func(u *uac) string { return sdpBody(u.rtpPort(), "18", "a=rtpmap:18 G729/8000") }, 488},
		{"SRTP only", hotlineURI, nil, "application/sdp", func(u *uac) string {
			return strings.Replace(u.offerSDP(""), "RTP/AVP", "RTP/SAVP", 1)
		}, 488},
		{"unknown body", hotlineURI, nil, "application/unknownformat", func(*uac) string { return "<audio/>" }, 415},
		{"Accept without SDP", hotlineURI, []string{"Accept: text/plain"}, "application/sdp", func(u *uac) string { return u.offerSDP("") }, 406},
		{"Require", hotlineURI, []string{"Require: 100rel"}, "application/sdp", func(u *uac) string { return u.offerSDP("") }, 420},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUAC(t, srv.Addr(), "udp")
			r := u.invite(tc.ruri, tc.extra, tc.ctype, tc.body(u))
			if r.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", r.StatusCode, r.Reason, tc.status)
			}
			if tc.status == 420 && r.GetHeader("Unsupported") == nil {
				t.Fatal("420 without Unsupported")
			}
		})
	}
	t.Run("OPTIONS", func(t *testing.T) {
		u := newUAC(t, srv.Addr(), "udp")
		u.cseq++
		u.request("OPTIONS", hotlineURI, u.cseq, "OPTIONS", newBranch(), nil, "", "")
		r := u.response("OPTIONS", 200, 2*time.Second)
		if r.StatusCode != 200 || r.GetHeader("Allow") == nil || r.GetHeader("Accept") == nil {
			t.Fatalf("OPTIONS: %d allow=%v accept=%v", r.StatusCode, r.GetHeader("Allow"), r.GetHeader("Accept"))
		}
	})
	for _, m := range []struct {
		method string
		status int
	}{{"SUBSCRIBE", 405}, {"FROBNICATE", 501}} {
		t.Run(m.method, func(t *testing.T) {
			u := newUAC(t, srv.Addr(), "udp")
			u.cseq++
			u.request(m.method, hotlineURI, u.cseq, m.method, newBranch(), nil, "", "")
			r := u.response(m.method, 200, 2*time.Second)
			if r.StatusCode != m.status || r.GetHeader("Allow") == nil {
				t.Fatalf("%s: %d, want %d with Allow", m.method, r.StatusCode, m.status)
			}
		})
	}
	t.Run("BYE outside dialog", func(t *testing.T) {
		u := newUAC(t, srv.Addr(), "udp")
		u.toTag = "nosuchtag"
		if r := u.bye(hotlineURI); r.StatusCode != 481 {
			t.Fatalf("got %d, want 481", r.StatusCode)
		}
	})
}

// TestHotlineForms: every dialled form of 12345 is answered.
func TestHotlineForms(t *testing.T) {
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		if err := c.Answer(ctx); err == nil {
			_ = c.Hangup(ctx, "test")
		}
	})
	for _, ruri := range []string{
		"sip:12345@127.0.0.1",
		"sip:023-12345@127.0.0.1",
		"sip:02312345@127.0.0.1;user=phone",
		"sip:+862312345@127.0.0.1;user=phone",
		"sip:862312345@127.0.0.1",
		"sip:023%2012345@127.0.0.1",
		"tel:+86-23-12345",
	} {
		t.Run(ruri, func(t *testing.T) {
			u := newUAC(t, srv.Addr(), "udp")
			r := u.invite(ruri, nil, "application/sdp", u.offerSDP(""))
			if r.StatusCode != 200 {
				t.Fatalf("got %d", r.StatusCode)
			}
			u.ack(ruri, "", "")
			go func() { _, _ = u.read(3 * time.Second) }()
			select {
			case <-u.byes:
			case <-time.After(3 * time.Second):
				t.Fatal("no BYE")
			}
		})
	}
	waitFor(t, "calls released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// TestInactivity: no inbound RTP for the engine's timeout ends the call
// with a BYE.
func TestInactivity(t *testing.T) {
	answered := make(chan ivr.Call, 1)
	srv := startServer(t, holdHandler(answered), func(m *media.Config, _ *Config) { m.InactivityTimeout = 500 * time.Millisecond })
	u := newUAC(t, srv.Addr(), "udp")
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("")); r.StatusCode != 200 {
		t.Fatalf("INVITE: %d", r.StatusCode)
	}
	u.ack(hotlineURI, "", "")
	<-answered
	go func() { _, _ = u.read(5 * time.Second) }()
	select {
	case <-u.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE after RTP inactivity")
	}
	waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// TestDrain: while draining, a new INVITE gets 503 with Retry-After; the
// live call gets its grace, then a BYE.
func TestDrain(t *testing.T) {
	answered := make(chan ivr.Call, 1)
	srv := startServer(t, holdHandler(answered))
	u := newUAC(t, srv.Addr(), "udp")
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("")); r.StatusCode != 200 {
		t.Fatalf("INVITE: %d", r.StatusCode)
	}
	u.ack(hotlineURI, "", "")
	<-answered
	drained := make(chan struct{})
	go func() {
		srv.Drain(context.Background(), 300*time.Millisecond)
		close(drained)
	}()
	waitFor(t, "draining", time.Second, func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.draining })
	u2 := newUAC(t, srv.Addr(), "udp")
	r := u2.invite(hotlineURI, nil, "application/sdp", u2.offerSDP(""))
	if r.StatusCode != 503 || r.GetHeader("Retry-After") == nil {
		t.Fatalf("INVITE while draining: %d", r.StatusCode)
	}
	go func() { _, _ = u.read(5 * time.Second) }()
	select {
	case <-u.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE after the grace")
	}
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return")
	}
}

// TestHandlerNoAnswer: a handler that returns without answering gets the
// caller a 480.
func TestHandlerNoAnswer(t *testing.T) {
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {})
	u := newUAC(t, srv.Addr(), "udp")
	if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("")); r.StatusCode != 480 {
		t.Fatalf("got %d, want 480", r.StatusCode)
	}
	waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// TestWildcardListenNeedsMediaAddr: SDP must never say c=0.0.0.0 by accident.
func TestWildcardListenNeedsMediaAddr(t *testing.T) {
	eng, err := media.NewEngine(media.Config{IP: netip.MustParseAddr("127.0.0.1"), Sockets: 1, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	srv, err := New(Config{Listen: "0.0.0.0:0", Engine: eng, Prompts: testPrompts(t), Handler: HandlerFunc(func(context.Context, ivr.Call) {})})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		srv.Close()
		t.Fatal("Start on 0.0.0.0 without MediaAddr succeeded")
	}
}
