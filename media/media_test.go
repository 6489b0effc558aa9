package media

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var loopback = netip.MustParseAddr("127.0.0.1")

// newEngine starts an engine on loopback and closes it at test end.
func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.IP = loopback
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// pkt is a copy of one received packet.
type pkt struct {
	h       rtp.Header
	payload []byte
	at      time.Time
}

// recorder collects packets and digits of a session.
type recorder struct {
	mu      sync.Mutex
	pkts    []pkt
	digits  []byte
	digitAt []time.Time
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) onPacket(h *rtp.Header, payload []byte, at time.Time) {
	r.mu.Lock()
	r.pkts = append(r.pkts, pkt{h: h.Clone(), payload: slices.Clone(payload), at: at})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) onDigit(d byte) {
	r.mu.Lock()
	r.digits = append(r.digits, d)
	r.digitAt = append(r.digitAt, time.Now())
	r.mu.Unlock()
}

func (r *recorder) packets() []pkt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pkts)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pkts)
}

func (r *recorder) gotDigits() ([]byte, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.digits), slices.Clone(r.digitAt)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pair creates a session on a (sending side) talking to one on b
// (receiving side, recorded), like callsim and hotlined.
func pair(t testing.TB, a, b *Engine, rb *recorder, dtmfPT uint8) (*Session, *Session) {
	t.Helper()
	sa, err := a.NewSession(SessionConfig{PayloadType: 8, DTMFPayloadType: dtmfPT})
	if err != nil {
		t.Fatal(err)
	}
	cfg := SessionConfig{Remote: sa.LocalAddr(), PayloadType: 8, DTMFPayloadType: dtmfPT}
	if rb != nil {
		cfg.OnPacket, cfg.OnDigit = rb.onPacket, rb.onDigit
	}
	sb, err := b.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sa.SetRemote(sb.LocalAddr())
	return sa, sb
}

// frames returns n 160-byte frames, frame i filled with byte tag+i.
func frames(n int, tag byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		f := make([]byte, 160)
		for j := range f {
			f[j] = tag + byte(i)
		}
		out[i] = f
	}
	return out
}

func TestPlayoutArrivesCompleteInOrder(t *testing.T) {
	a := newEngine(t, Config{Sockets: 2})
	b := newEngine(t, Config{Sockets: 2})
	rb := newRecorder()
	sa, _ := pair(t, a, b, rb, 0)

	const n = 50
	done := make(chan bool, 1)
	sa.Play(frames(n, 0), PlayOptions{OnDone: func(c bool) { done <- c }})
	select {
	case c := <-done:
		if !c {
			t.Fatal("OnDone(false) for a playback that ran to its end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("playback did not finish")
	}
	waitFor(t, time.Second, "all packets", func() bool { return rb.count() >= n })
	time.Sleep(60 * time.Millisecond)
	ps := rb.packets()
	if len(ps) != n {
		t.Fatalf("received %d packets, want %d", len(ps), n)
	}
	var gaps []time.Duration
	for i, p := range ps {
		if p.h.PayloadType != 8 || len(p.payload) != 160 || p.payload[0] != byte(i) {
			t.Fatalf("packet %d: pt %d len %d first byte %d", i, p.h.PayloadType, len(p.payload), p.payload[0])
		}
		if p.h.Marker != (i == 0) {
			t.Errorf("packet %d: marker %v", i, p.h.Marker)
		}
		if i == 0 {
			continue
		}
		prev := ps[i-1].h
		if p.h.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, p.h.SequenceNumber, prev.SequenceNumber)
		}
		if p.h.Timestamp != prev.Timestamp+160 {
			t.Errorf("packet %d: ts %d after %d", i, p.h.Timestamp, prev.Timestamp)
		}
		if p.h.SSRC != prev.SSRC {
			t.Errorf("packet %d: SSRC changed", i)
		}
		gaps = append(gaps, p.at.Sub(ps[i-1].at))
	}
	slices.Sort(gaps)
	// Pacing, loosely (the machine is shared): the median gap is one
	// packet time and the whole playout takes about n packet times.
	if med := gaps[len(gaps)/2]; med < 10*time.Millisecond || med > 30*time.Millisecond {
		t.Errorf("median interarrival %v, want about 20ms", med)
	}
	if span := ps[n-1].at.Sub(ps[0].at); span < 40*20*time.Millisecond {
		t.Errorf("playout of %d frames took %v: not paced", n, span)
	}
	st := sa.Stats()
	if st.PacketsSent != n {
		t.Errorf("sender stats: sent %d, want %d", st.PacketsSent, n)
	}
	if es := a.Stats(); es.PacketsSent != n || es.Sessions != 1 {
		t.Errorf("engine stats %+v", es)
	}
}

func TestStopHoldAndNewTalkspurt(t *testing.T) {
	a := newEngine(t, Config{Sockets: 1})
	b := newEngine(t, Config{Sockets: 1})
	rb := newRecorder()
	sa, _ := pair(t, a, b, rb, 0)

	stopped := make(chan bool, 1)
	sa.Play(frames(10, 0), PlayOptions{Loop: true, OnDone: func(c bool) { stopped <- c }})
	waitFor(t, 2*time.Second, "playout", func() bool { return rb.count() >= 5 })
	sa.Stop()
	if c := <-stopped; c {
		t.Fatal("OnDone(true) after Stop")
	}
	// A tick that built its packet just before Stop may still flush it.
	time.Sleep(60 * time.Millisecond)
	atStop := rb.count()
	time.Sleep(100 * time.Millisecond)
	if got := rb.count(); got != atStop {
		t.Fatalf("%d packets after Stop", got-atStop)
	}

	// A new talkspurt: marker set, seq continues, ts advanced with wall time.
	before := rb.packets()
	last := before[len(before)-1].h
	sa.Play(frames(3, 100), PlayOptions{})
	waitFor(t, time.Second, "new talkspurt", func() bool { return rb.count() >= atStop+3 })
	first := rb.packets()[atStop].h
	if !first.Marker {
		t.Error("first packet of a new talkspurt without marker")
	}
	if first.SequenceNumber != last.SequenceNumber+1 {
		t.Errorf("seq %d after %d", first.SequenceNumber, last.SequenceNumber)
	}
	if d := first.Timestamp - last.Timestamp; d < 160*5 || d%160 != 0 {
		t.Errorf("timestamp advanced by %d over >100 ms of silence", d)
	}

	// Hold: nothing is sent; unhold resumes with a marker.
	sa.Play(frames(10, 0), PlayOptions{Loop: true})
	waitFor(t, time.Second, "loop", func() bool { return rb.count() >= atStop+6 })
	sa.SetHold(true)
	time.Sleep(60 * time.Millisecond)
	held := rb.count()
	time.Sleep(100 * time.Millisecond)
	if got := rb.count(); got != held {
		t.Fatalf("%d packets while held", got-held)
	}
	sa.SetHold(false)
	waitFor(t, time.Second, "unhold", func() bool { return rb.count() > held })
	if p := rb.packets()[held]; !p.h.Marker {
		t.Error("first packet after unhold without marker")
	}
}

func TestPlayReplacesAndClose(t *testing.T) {
	a := newEngine(t, Config{Sockets: 1})
	b := newEngine(t, Config{Sockets: 1})
	sa, _ := pair(t, a, b, nil, 0)
	var mu sync.Mutex
	var results []string
	rec := func(name string) func(bool) {
		return func(c bool) {
			mu.Lock()
			defer mu.Unlock()
			results = append(results, name+map[bool]string{true: ":done", false: ":cut"}[c])
		}
	}
	sa.Play(frames(100, 0), PlayOptions{OnDone: rec("first")})
	sa.Play(frames(100, 0), PlayOptions{OnDone: rec("second")})
	sa.Close()
	sa.Close()
	sa.Play(frames(1, 0), PlayOptions{OnDone: rec("after-close")})
	mu.Lock()
	defer mu.Unlock()
	want := []string{"first:cut", "second:cut", "after-close:cut"}
	if !slices.Equal(results, want) {
		t.Fatalf("OnDone calls %v, want %v", results, want)
	}
	if n := a.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions after Close", n)
	}
}

func TestDTMFEndToEnd(t *testing.T) {
	a := newEngine(t, Config{Sockets: 1})
	b := newEngine(t, Config{Sockets: 1})
	rb := newRecorder()
	sa, _ := pair(t, a, b, rb, 101)

	sa.Play(frames(10, 0), PlayOptions{Loop: true})
	waitFor(t, time.Second, "audio", func() bool { return rb.count() >= 3 })
	const dur = 300 * time.Millisecond
	sa.SendDTMF('5', dur)
	var endAt time.Time
	waitFor(t, 2*time.Second, "end of event", func() bool {
		ps := rb.packets()
		n := 0
		for _, p := range ps {
			if p.h.PayloadType == 101 {
				if ev, _ := ParseDTMFEvent(p.payload); ev.End {
					n++
					endAt = p.at
				}
			}
		}
		return n == dtmfEndRepeats
	})
	digits, at := rb.gotDigits()
	if sentAt := sa.Stats().LastDTMFStart; sentAt.IsZero() || sentAt.After(at[0]) {
		t.Errorf("LastDTMFStart %v, digit received at %v", sentAt, at[0])
	}
	if string(digits) != "5" {
		t.Fatalf("digits %q, want \"5\"", digits)
	}
	// Reported on the first packet, not at the end of the event.
	if lead := endAt.Sub(at[0]); lead < dur/2 {
		t.Errorf("digit reported only %v before the event end", lead)
	}

	// Packet format (RFC 4733 section 2.5.1): marker on the first event
	// packet only, one timestamp, growing duration, end bit three times,
	// and no audio in between.
	ps := rb.packets()
	firstEv, lastEv := -1, -1
	for i, p := range ps {
		if p.h.PayloadType == 101 {
			if firstEv < 0 {
				firstEv = i
			}
			lastEv = i
		}
	}
	var prevDur uint16
	for i := firstEv; i <= lastEv; i++ {
		p := ps[i]
		if p.h.PayloadType != 101 {
			t.Fatalf("audio packet %d inside the DTMF event", i)
		}
		ev, err := ParseDTMFEvent(p.payload)
		if err != nil || ev.Event != 5 {
			t.Fatalf("packet %d: %+v %v", i, ev, err)
		}
		if p.h.Marker != (i == firstEv) {
			t.Errorf("event packet %d marker %v", i, p.h.Marker)
		}
		if p.h.Timestamp != ps[firstEv].h.Timestamp {
			t.Errorf("event packet %d timestamp changed", i)
		}
		if ev.Duration < prevDur {
			t.Errorf("duration went back from %d to %d", prevDur, ev.Duration)
		}
		prevDur = ev.Duration
		if i > 0 && p.h.SequenceNumber != ps[i-1].h.SequenceNumber+1 {
			t.Errorf("seq gap at %d", i)
		}
	}
	if prevDur != uint16(dur/time.Millisecond*8) {
		t.Errorf("final duration %d, want %d", prevDur, dur/time.Millisecond*8)
	}
	// Audio resumes with a new talkspurt.
	waitFor(t, time.Second, "audio after DTMF", func() bool { return rb.count() > lastEv+1 })
	if p := rb.packets()[lastEv+1]; p.h.PayloadType != 8 || !p.h.Marker {
		t.Errorf("packet after the event: pt %d marker %v", p.h.PayloadType, p.h.Marker)
	}

	// The same key twice in a row is two events.
	sa.SendDTMF('5', 60*time.Millisecond)
	sa.SendDTMF('5', 60*time.Millisecond)
	sa.SendDTMF('#', 60*time.Millisecond)
	waitFor(t, 2*time.Second, "three more digits", func() bool {
		d, _ := rb.gotDigits()
		return len(d) >= 4
	})
	time.Sleep(150 * time.Millisecond)
	if d, _ := rb.gotDigits(); string(d) != "555#" {
		t.Fatalf("digits %q, want \"555#\"", d)
	}
}

// rawPeer is a plain UDP socket that speaks hand-made RTP.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawPeer(t *testing.T) *rawPeer {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawPeer{t: t, conn: c}
}

func (r *rawPeer) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *rawPeer) send(to netip.AddrPort, h rtp.Header, payload []byte) {
	r.t.Helper()
	h.Version = 2
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.t.Fatal(err)
	}
}

func dtmfPayload(ev uint8, end bool, dur uint16) []byte {
	b := make([]byte, 4)
	DTMFEvent{Event: ev, End: end, Volume: 10, Duration: dur}.MarshalTo(b)
	return b
}

func TestDTMFDeduplication(t *testing.T) {
	b := newEngine(t, Config{Sockets: 1})
	peer := newRawPeer(t)
	rb := newRecorder()
	sb, err := b.NewSession(SessionConfig{Remote: peer.addr(), PayloadType: 0, DTMFPayloadType: 96, OnDigit: rb.onDigit})
	if err != nil {
		t.Fatal(err)
	}
	to := sb.LocalAddr()
	seq := uint16(1000)
	event := func(ev uint8, ts uint32, withStart bool) {
		if withStart {
			peer.send(to, rtp.Header{PayloadType: 96, Marker: true, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, dtmfPayload(ev, false, 160))
			seq++
		}
		for d := uint16(320); d <= 800; d += 160 {
			peer.send(to, rtp.Header{PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, dtmfPayload(ev, false, d))
			seq++
		}
		for range 3 {
			peer.send(to, rtp.Header{PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, dtmfPayload(ev, true, 960))
			seq++
		}
	}
	event(1, 8000, true)
	event(1, 8000, false) // a full retransmission of the same event
	event(1, 9600, true)  // same key again: a new event
	event(11, 11200, false)
	// Not digits: flash (16), a short payload, another payload type.
	peer.send(to, rtp.Header{PayloadType: 96, SequenceNumber: seq, Timestamp: 12800, SSRC: 7}, dtmfPayload(16, false, 160))
	peer.send(to, rtp.Header{PayloadType: 96, SequenceNumber: seq + 1, Timestamp: 14400, SSRC: 7}, []byte{1, 2})
	peer.send(to, rtp.Header{PayloadType: 0, SequenceNumber: seq + 2, Timestamp: 16000, SSRC: 7}, dtmfPayload(3, false, 160))
	waitFor(t, time.Second, "packets", func() bool { return sb.Stats().PacketsReceived == uint64(seq+3-1000) })
	if d, _ := rb.gotDigits(); string(d) != "11#" {
		t.Fatalf("digits %q, want \"11#\"", d)
	}
	if st := sb.Stats(); st.DigitsReceived != 3 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLossCountedFromSequenceGaps(t *testing.T) {
	b := newEngine(t, Config{Sockets: 1})
	peer := newRawPeer(t)
	sb, err := b.NewSession(SessionConfig{Remote: peer.addr(), PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint16{65530, 65531, 65534, 2, 1, 3, 3} { // wrap, gaps of 2 and 3, late 1, dup 3
		peer.send(sb.LocalAddr(), rtp.Header{PayloadType: 8, SequenceNumber: seq, SSRC: 9}, make([]byte, 160))
	}
	waitFor(t, time.Second, "packets", func() bool { return sb.Stats().PacketsReceived == 7 })
	if lost := sb.Stats().Lost; lost != 5 {
		t.Fatalf("lost %d, want 5 (65532, 65533, 65535, 0, 1 — the late 1 is not subtracted)", lost)
	}
}

func TestLatchingAndUnknownSources(t *testing.T) {
	b := newEngine(t, Config{Sockets: 1, MaxSockets: 1}) // force sharing
	peer := newRawPeer(t)
	other := newRawPeer(t)

	// Two sessions with unknown remotes on the one socket (the pool may not
	// grow to separate them): a packet from a new source is ambiguous and
	// dropped.
	rx := newRecorder()
	s1, err := b.NewSession(SessionConfig{PayloadType: 8, OnPacket: rx.onPacket})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.NewSession(SessionConfig{PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	peer.send(s1.LocalAddr(), rtp.Header{PayloadType: 8, SSRC: 1}, make([]byte, 160))
	waitFor(t, time.Second, "drop", func() bool { return b.Stats().DroppedUnknownSource == 1 })

	// With one candidate left it latches, and we send back to the source.
	s2.Close()
	peer.send(s1.LocalAddr(), rtp.Header{PayloadType: 8, SSRC: 1, SequenceNumber: 1}, make([]byte, 160))
	waitFor(t, time.Second, "latch", func() bool { return rx.count() == 1 })
	st := s1.Stats()
	if !st.RemoteLatched || st.Remote != peer.addr() {
		t.Fatalf("stats after latching %+v", st)
	}
	s1.Play(frames(1, 42), PlayOptions{})
	buf := make([]byte, 1500)
	_ = peer.conn.SetReadDeadline(time.Now().Add(time.Second))
	n, err := peer.conn.Read(buf)
	if err != nil {
		t.Fatalf("no packet back to the latched source: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil || p.Payload[0] != 42 {
		t.Fatalf("bad packet back: %v", err)
	}

	// Now that s1 has latched, another source is unknown; garbage is malformed.
	other.send(s1.LocalAddr(), rtp.Header{PayloadType: 8, SSRC: 2}, make([]byte, 160))
	if _, err := other.conn.WriteToUDPAddrPort([]byte{1, 2, 3}, s1.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "drops", func() bool {
		st := b.Stats()
		return st.DroppedUnknownSource == 2 && st.DroppedMalformed == 1
	})
	if rx.count() != 1 {
		t.Fatal("packet from an unknown source delivered")
	}

	// A NAT that rewrites only the port: the expected IP matches.
	s3, err := b.NewSession(SessionConfig{Remote: netip.AddrPortFrom(loopback, 9), PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	other.send(s3.LocalAddr(), rtp.Header{PayloadType: 8, SSRC: 3}, make([]byte, 160))
	waitFor(t, time.Second, "port latch", func() bool { return s3.Stats().PacketsReceived == 1 })
	if st := s3.Stats(); st.Remote != other.addr() || !st.RemoteLatched {
		t.Fatalf("s3 stats %+v", st)
	}
}

func TestLatchEligible(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.5:4000")
	tests := []struct {
		exp  string
		want bool
	}{
		{"", true},                   // remote not known yet
		{"203.0.113.5:5000", true},   // port-rewriting NAT
		{"192.168.1.10:5000", true},  // inside address in SDP
		{"100.64.1.1:5000", true},    // carrier-grade NAT
		{"0.0.0.0:5000", true},       // unspecified
		{"198.51.100.7:5000", false}, // another public address
	}
	for _, tt := range tests {
		var exp netip.AddrPort
		if tt.exp != "" {
			exp = netip.MustParseAddrPort(tt.exp)
		}
		if got := latchEligible(exp, src); got != tt.want {
			t.Errorf("latchEligible(%q) = %v, want %v", tt.exp, got, tt.want)
		}
	}
}

func TestManySessionsDemultiplex(t *testing.T) {
	// 200 calls between two small pools: the answering side (b) grows its
	// pool so every (socket, remote) pair stays unique.
	a := newEngine(t, Config{Sockets: 4})
	b := newEngine(t, Config{Sockets: 4})
	const calls = 200
	recs := make([]*recorder, calls)
	senders := make([]*Session, calls)
	for i := range calls {
		recs[i] = newRecorder()
		senders[i], _ = pair(t, a, b, recs[i], 0)
	}
	if got := b.Stats().Sockets; got < calls/4 {
		t.Fatalf("answering pool has %d sockets, want >= %d", got, calls/4)
	}
	for i, s := range senders {
		f := make([]byte, 160)
		f[0], f[1] = byte(i), byte(i>>8)
		s.Play([][]byte{f, f, f, f, f}, PlayOptions{})
	}
	waitFor(t, 5*time.Second, "all packets", func() bool {
		for _, r := range recs {
			if r.count() < 5 {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond)
	for i, r := range recs {
		ps := r.packets()
		if len(ps) != 5 {
			t.Fatalf("call %d received %d packets", i, len(ps))
		}
		for _, p := range ps {
			if id := int(p.payload[0]) | int(p.payload[1])<<8; id != i {
				t.Fatalf("call %d received a packet of call %d", i, id)
			}
		}
	}
	if st := b.Stats(); st.DroppedUnknownSource != 0 || st.PacketsReceived != calls*5 {
		t.Fatalf("receiver stats %+v", st)
	}
}

func TestInactivity(t *testing.T) {
	const timeout = 600 * time.Millisecond
	a := newEngine(t, Config{Sockets: 1, InactivityTimeout: timeout})
	b := newEngine(t, Config{Sockets: 1, InactivityTimeout: -1})
	fired := make(chan string, 4)
	silent, err := a.NewSession(SessionConfig{PayloadType: 8, OnInactive: func() { fired <- "silent" }})
	if err != nil {
		t.Fatal(err)
	}
	_ = silent
	fed, err := a.NewSession(SessionConfig{PayloadType: 8, OnInactive: func() { fired <- "fed" }})
	if err != nil {
		t.Fatal(err)
	}
	feeder, err := b.NewSession(SessionConfig{Remote: fed.LocalAddr(), PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	fed.SetRemote(feeder.LocalAddr())
	feeder.Play(frames(5, 0), PlayOptions{Loop: true})
	start := time.Now()
	select {
	case who := <-fired:
		if who != "silent" {
			t.Fatalf("OnInactive for the %s session", who)
		}
		if d := time.Since(start); d < timeout-50*time.Millisecond {
			t.Fatalf("OnInactive after %v, before the %v timeout", d, timeout)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("OnInactive not called")
	}
	// Fired once, not on every sweep; the fed session stays quiet.
	select {
	case who := <-fired:
		t.Fatalf("unexpected OnInactive for %s", who)
	case <-time.After(500 * time.Millisecond):
	}
	// The fed session goes quiet once its peer stops.
	feeder.Stop()
	select {
	case who := <-fired:
		if who != "fed" {
			t.Fatalf("OnInactive for %s", who)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("OnInactive not called after the peer stopped")
	}
}

func TestCallbacksMayCallBack(t *testing.T) {
	// OnDigit barges in (Stop + Play) and OnDone starts the next prompt,
	// as the IVR does; nothing deadlocks and the next prompt goes out.
	a := newEngine(t, Config{Sockets: 1})
	b := newEngine(t, Config{Sockets: 1})
	ra := newRecorder()
	var sb *Session
	next := frames(2, 200)
	digitSeen := make(chan struct{})
	sa, err := a.NewSession(SessionConfig{PayloadType: 8, DTMFPayloadType: 101, OnPacket: ra.onPacket})
	if err != nil {
		t.Fatal(err)
	}
	sb, err = b.NewSession(SessionConfig{Remote: sa.LocalAddr(), PayloadType: 8, DTMFPayloadType: 101,
		OnDigit: func(byte) {
			sb.Stop()
			sb.Play(next, PlayOptions{OnDone: func(bool) { sb.Play(frames(1, 250), PlayOptions{}) }})
			close(digitSeen)
		}})
	if err != nil {
		t.Fatal(err)
	}
	sa.SetRemote(sb.LocalAddr())
	sb.Play(frames(10, 0), PlayOptions{Loop: true})
	waitFor(t, time.Second, "prompt", func() bool { return ra.count() > 2 })
	sa.SendDTMF('9', 100*time.Millisecond)
	<-digitSeen
	waitFor(t, 2*time.Second, "next prompts", func() bool {
		ps := ra.packets()
		return len(ps) > 0 && ps[len(ps)-1].payload[0] == 250
	})
}

func TestEngineCloseStopsEverything(t *testing.T) {
	a, err := NewEngine(Config{IP: loopback, Sockets: 3, Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	s, err := a.NewSession(SessionConfig{Remote: netip.AddrPortFrom(loopback, 9), PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	s.Play(frames(5, 0), PlayOptions{Loop: true, OnDone: func(c bool) { done <- c }})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if c := <-done; c {
		t.Fatal("OnDone(true) on engine close")
	}
	if _, err := a.NewSession(SessionConfig{}); err == nil {
		t.Fatal("NewSession after Close succeeded")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// goleak in TestMain checks the goroutines are gone.
}

func TestPortRange(t *testing.T) {
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	base := probe.LocalAddr().(*net.UDPAddr).Port &^ 1
	_ = probe.Close()
	e, err := NewEngine(Config{IP: loopback, Sockets: 2, PortMin: base - 40, PortMax: base - 20})
	if err != nil {
		t.Skipf("port range busy: %v", err)
	}
	defer e.Close()
	for range 4 {
		s, err := e.NewSession(SessionConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p := int(s.LocalAddr().Port())
		if p < base-40 || p > base-20 {
			t.Fatalf("port %d outside the range", p)
		}
	}
}

func TestLatchBehindNATSurvivesRefresh(t *testing.T) {
	b := newEngine(t, Config{Sockets: 1})
	peer := newRawPeer(t)
	inside := netip.MustParseAddrPort("192.168.1.10:5000") // what a NATed phone writes in SDP
	s, err := b.NewSession(SessionConfig{Remote: inside, PayloadType: 8})
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq uint16) {
		peer.send(s.LocalAddr(), rtp.Header{PayloadType: 8, SSRC: 5, SequenceNumber: seq}, make([]byte, 160))
	}
	send(1)
	waitFor(t, time.Second, "latch", func() bool { return s.Stats().PacketsReceived == 1 })
	if st := s.Stats(); !st.RemoteLatched || st.Remote != peer.addr() {
		t.Fatalf("not latched: %+v", st)
	}
	// A refresh re-INVITE repeats the inside address: the latch stays.
	s.SetRemote(inside)
	send(2)
	waitFor(t, time.Second, "packet after refresh", func() bool { return s.Stats().PacketsReceived == 2 })
	if st := s.Stats(); !st.RemoteLatched || st.Remote != peer.addr() {
		t.Fatalf("latch lost on refresh: %+v", st)
	}
	// A new SDP address replaces it, and the session may latch again.
	s.SetRemote(netip.MustParseAddrPort("192.168.1.11:6000"))
	if st := s.Stats(); st.RemoteLatched || st.Remote.Port() != 6000 {
		t.Fatalf("after new address: %+v", st)
	}
	send(3)
	waitFor(t, time.Second, "re-latch", func() bool { return s.Stats().PacketsReceived == 3 })
	if st := s.Stats(); !st.RemoteLatched || st.Remote != peer.addr() {
		t.Fatalf("not re-latched: %+v", st)
	}
	if n := b.Stats().DroppedUnknownSource; n != 0 {
		t.Fatalf("%d packets dropped", n)
	}
}

func TestEarlyMediaBeforeAnswerNeverMisroutes(t *testing.T) {
	// The callsim situation: the offering side creates its sessions with
	// the remote unknown; the answering side starts sending at once, and
	// the offerer applies the answer (SetRemote) a little later. Early
	// packets must latch to the right call or be dropped, never cross calls.
	phone := newEngine(t, Config{Sockets: 2})
	server := newEngine(t, Config{Sockets: 4})
	const calls = 60
	var mu sync.Mutex
	crossed := 0
	check := func(want int) func(*rtp.Header, []byte, time.Time) {
		return func(_ *rtp.Header, p []byte, _ time.Time) {
			if id := int(p[0]) | int(p[1])<<8; id != want {
				mu.Lock()
				crossed++
				mu.Unlock()
			}
		}
	}
	tagged := func(i int) [][]byte {
		f := make([]byte, 160)
		f[0], f[1] = byte(i), byte(i>>8)
		return [][]byte{f}
	}
	offers := make([]*Session, calls)
	answers := make([]*Session, calls)
	var wg sync.WaitGroup
	for i := range calls {
		var err error
		offers[i], err = phone.NewSession(SessionConfig{PayloadType: 8, OnPacket: check(i)})
		if err != nil {
			t.Fatal(err)
		}
		answers[i], err = server.NewSession(SessionConfig{Remote: offers[i].LocalAddr(), PayloadType: 8, OnPacket: check(i)})
		if err != nil {
			t.Fatal(err)
		}
		answers[i].Play(tagged(i), PlayOptions{Loop: true})
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%7) * 15 * time.Millisecond) // the 200 OK takes a while
			offers[i].SetRemote(answers[i].LocalAddr())
			offers[i].Play(tagged(i), PlayOptions{Loop: true})
		}()
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	waitFor(t, 3*time.Second, "media both ways on every call", func() bool {
		for i := range calls {
			if offers[i].Stats().PacketsReceived < 3 || answers[i].Stats().PacketsReceived < 3 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if crossed != 0 {
		t.Fatalf("%d packets delivered to the wrong call", crossed)
	}
	t.Logf("phone pool %d sockets, early packets dropped %d", phone.Stats().Sockets, phone.Stats().DroppedUnknownSource)
}

func TestIPv6Loopback(t *testing.T) {
	ip6 := netip.MustParseAddr("::1")
	probe, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip6, 0)))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = probe.Close()
	a, err := NewEngine(Config{IP: ip6, Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewEngine(Config{IP: ip6, Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rb := newRecorder()
	sa, _ := pair(t, a, b, rb, 0)
	sa.Play(frames(3, 0), PlayOptions{})
	waitFor(t, time.Second, "packets over IPv6", func() bool { return rb.count() == 3 })
	if st := b.Stats(); st.DroppedUnknownSource != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAwaitRemoteSharesSockets: sessions whose remote will come from
// signalling (ringing outbound legs) share the pool; sessions that may
// latch to any source each need a socket without another such pending
// one, so the pool grows for them. After SetRemote an awaiting session
// receives from its remote.
func TestAwaitRemoteSharesSockets(t *testing.T) {
	e := newEngine(t, Config{Sockets: 2, InactivityTimeout: -1})
	var legs []*Session
	for range 20 {
		s, err := e.NewSession(SessionConfig{PayloadType: 8, AwaitRemote: true})
		if err != nil {
			t.Fatal(err)
		}
		legs = append(legs, s)
	}
	if n := e.Stats().Sockets; n != 2 {
		t.Fatalf("20 awaiting sessions grew the pool to %d sockets, want 2", n)
	}
	for range 3 {
		if _, err := e.NewSession(SessionConfig{PayloadType: 8}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Stats().Sockets; n < 3 {
		t.Fatalf("3 latching sessions on %d sockets: each needs one without another pending", n)
	}
	// A packet for an awaiting leg before its answer is dropped, not latched.
	far, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	got := make(chan uint32, 4)
	leg := legs[0]
	leg.cfg.OnPacket = func(h *rtp.Header, _ []byte, _ time.Time) { got <- h.SSRC }
	send := func(ssrc uint32) {
		b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: ssrc}, Payload: make([]byte, 160)}).Marshal()
		if _, err := far.WriteToUDP(b, net.UDPAddrFromAddrPort(leg.LocalAddr())); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	select {
	case s := <-got:
		t.Fatalf("an awaiting leg took packet %d from an unknown source", s)
	case <-time.After(200 * time.Millisecond):
	}
	leg.SetRemote(far.LocalAddr().(*net.UDPAddr).AddrPort())
	send(2)
	select {
	case s := <-got:
		if s != 2 {
			t.Fatalf("got SSRC %d", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("nothing received after SetRemote")
	}
}
