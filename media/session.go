package media

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Session is one RTP session (one call leg) living on one pool socket.
// Its methods are safe for concurrent use and may be called from its own
// callbacks.
type Session struct {
	e    *Engine
	cfg  SessionConfig
	sock *poolSock
	sh   *shard
	slot int

	// key is the remote address the session is registered under on its
	// socket; guarded by sock.mu.
	key netip.AddrPort

	// mu guards the send side; the pacer takes it once per tick.
	mu        sync.Mutex
	remote    netip.AddrPort // where we send
	sdpRemote netip.AddrPort // the last address given by NewSession or SetRemote
	ua        *net.UDPAddr   // cached remote for sendmmsg; nil while unknown
	latched   bool
	audioPT   uint8
	dtmfPT    uint8
	ssrc      uint32
	seq       uint16
	tsBase    uint32
	cycle0    int64
	started   bool
	talking   bool // the previous tick sent audio (else the next audio packet starts a talkspurt)
	play      *playback
	dtmfQ     []dtmfTx
	held      bool
	closed    bool

	closedA       atomic.Bool
	heard         atomic.Bool // counted out of sock.unheard
	sent          atomic.Uint64
	rcvd          atomic.Uint64
	lost          atomic.Uint64
	digits        atomic.Uint64
	lastRx        atomic.Int64 // unix ns of the last packet, or of the session start
	everRx        atomic.Int64 // unix ns of the last packet, 0 if none
	inactiveFired atomic.Bool
	rxSSRC        atomic.Uint32
	rxDTMFPT      atomic.Uint32
	dtmfSentAt    atomic.Int64        // unix ns of the tick that sent the last event's first packet
	tap           atomic.Pointer[tap] // relay or sink of inbound audio (relay.go)

	// Receive state, touched only by the socket's receive goroutine.
	rxStarted bool
	maxSeq    uint16
	evTS      [4]uint32 // recent RFC 4733 event timestamps, for de-duplication
	evValid   [4]bool
	evNext    int
}

// playback is one Play call.
type playback struct {
	frames [][]byte
	pos    int
	loop   bool
	onDone func(completed bool)
}

// dtmfTx is one RFC 4733 event being sent.
type dtmfTx struct {
	event   uint8
	total   uint32 // duration in samples
	started bool
	ts      uint32 // event timestamp (RFC 4733 section 2.5.1.2: start of the event)
	elapsed uint32
	endSent int
}

// dtmfEndRepeats is how many times the end packet is sent (RFC 4733
// section 2.5.1.4 recommends three).
const dtmfEndRepeats = 3

// NewSession creates a session on a pool socket and schedules it on a
// pacer slot. The socket is chosen so that no other session on it expects
// the same remote address (growing the pool up to MaxSockets if needed);
// among those, the least loaded socket, round-robin on ties.
func (e *Engine) NewSession(cfg SessionConfig) (*Session, error) {
	remote := normAddrPort(cfg.Remote)
	now := time.Now()
	s := &Session{
		e:       e,
		cfg:     cfg,
		audioPT: cfg.PayloadType & 0x7f,
		dtmfPT:  cfg.DTMFPayloadType & 0x7f,
		ssrc:    rand.Uint32(),
		seq:     uint16(rand.Uint32()),
		tsBase:  rand.Uint32(),
	}
	s.rxDTMFPT.Store(uint32(s.dtmfPT))
	s.lastRx.Store(now.UnixNano())
	if remote.IsValid() {
		s.setRemoteLocked(remote)
	}
	s.sdpRemote = remote

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	// Socket choice: (socket, remote) must stay unique, and a session that
	// may need latching should not share a socket with another one still
	// pending (see the latching rule in recv.go); among the sockets that
	// satisfy both, the least loaded, round-robin on ties. If none does,
	// the pool grows; at MaxSockets we settle for a unique pair, then for
	// anything.
	var chosen, fallback *poolSock
	needLatch := needsLatch(remote) && !(cfg.AwaitRemote && !remote.IsValid())
	n := len(e.socks)
	best, bestFB := -1, -1
	for i := range n {
		ps := e.socks[(e.rr+i)%n]
		if remote.IsValid() && ps.usedBy(remote) {
			continue
		}
		l := ps.load()
		if needLatch && ps.pendingLatch() {
			if fallback == nil || l < bestFB {
				fallback, bestFB = ps, l
			}
			continue
		}
		if chosen == nil || l < best {
			chosen, best = ps, l
		}
	}
	e.rr++
	if chosen == nil {
		switch {
		case n < e.cfg.MaxSockets:
			ps, err := e.addSocketLocked()
			if err != nil {
				return nil, fmt.Errorf("media: new session to %s: %w", remote, err)
			}
			chosen = ps
		case fallback != nil:
			chosen = fallback
		default:
			// Pool exhausted: share the pair; pickBySSRC disambiguates.
			chosen = e.socks[e.rr%n]
			e.log.Warn("media: remote shares a pool socket with another session", "remote", remote, "local", chosen.local)
		}
	}
	s.sock = chosen
	chosen.mu.Lock()
	chosen.addLocked(s, remote)
	chosen.mu.Unlock()

	// Pacer slot: sessions of one socket are kept in the same few (shard,
	// slot) groups so that each tick sends big sendmmsg batches on few
	// sockets (and the peer receives big recvmmsg batches); among the
	// groups of this socket, the least loaded.
	groups := len(e.shards) * e.slots
	m := min(len(e.socks), groups)
	var bestSh *shard
	bestSlot, bestLoad := 0, -1
	for g := chosen.idx % m; g < groups; g += m {
		sh, slot := e.shards[g%len(e.shards)], g/len(e.shards)
		sh.mu.Lock()
		l := len(sh.slots[slot])
		sh.mu.Unlock()
		if bestLoad < 0 || l < bestLoad {
			bestSh, bestSlot, bestLoad = sh, slot, l
		}
	}
	s.sh, s.slot = bestSh, bestSlot
	bestSh.add(s)
	e.sessions[s] = struct{}{}
	e.nSessions.Add(1)
	return s, nil
}

// normAddrPort unmaps IPv4-mapped IPv6 addresses so keys compare equal.
func normAddrPort(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// setRemoteLocked sets the send address. Called with s.mu held.
func (s *Session) setRemoteLocked(a netip.AddrPort) {
	s.remote = a
	if a.IsValid() {
		s.ua = net.UDPAddrFromAddrPort(a)
	} else {
		s.ua = nil
	}
}

// LocalAddr is the address:port to put in our SDP (the pool socket's).
func (s *Session) LocalAddr() netip.AddrPort { return s.sock.local }

// SetRemote sets a new remote address (re-INVITE, late offer). The session
// stays on its socket. If the session had latched to a NAT's address and a
// was also the previous SDP address (a refresh re-INVITE from behind the
// NAT), the latched address is kept; otherwise a replaces it and the
// session may latch again.
func (s *Session) SetRemote(a netip.AddrPort) {
	a = normAddrPort(a)
	ps := s.sock
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s.mu.Lock()
	if s.latched && a == s.sdpRemote {
		s.mu.Unlock()
		return
	}
	s.sdpRemote = a
	s.setRemoteLocked(a)
	s.latched = false
	s.mu.Unlock()
	if s.key != a {
		ps.moveLocked(s, a)
		if !s.closedA.Load() && s.heard.CompareAndSwap(true, false) {
			ps.unheard.Add(1)
		}
	}
}

// SetPayloadTypes changes the audio and telephone-event payload types (0
// for dtmf = none); the dtmf type is also the one recognised on receive.
func (s *Session) SetPayloadTypes(audio, dtmf uint8) {
	s.mu.Lock()
	s.audioPT, s.dtmfPT = audio&0x7f, dtmf&0x7f
	s.mu.Unlock()
	s.rxDTMFPT.Store(uint32(dtmf & 0x7f))
}

// Play replaces any current playback (whose OnDone gets false). The first
// frame goes out at the session's next pacer slot, at most 20 ms later.
// frames are 160-byte payloads; they are shared and never written.
// OnDone(true) is called on the pacer goroutine after the last frame was
// sent (never for Loop); it must return quickly.
func (s *Session) Play(frames [][]byte, opts PlayOptions) {
	var p *playback
	if len(frames) > 0 {
		p = &playback{frames: frames, loop: opts.Loop, onDone: opts.OnDone}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if opts.OnDone != nil {
			opts.OnDone(false)
		}
		return
	}
	old := s.play
	s.play = p
	s.mu.Unlock()
	if old != nil && old.onDone != nil {
		old.onDone(false)
	}
	if p == nil && opts.OnDone != nil {
		opts.OnDone(true)
	}
}

// Stop stops playback now (barge-in): the next tick sends nothing. The
// playback's OnDone gets false.
func (s *Session) Stop() {
	s.mu.Lock()
	old := s.play
	s.play = nil
	s.mu.Unlock()
	if old != nil && old.onDone != nil {
		old.onDone(false)
	}
}

// SendDTMF queues an RFC 4733 event for digit ('0'-'9', '*', '#', 'A'-'D')
// lasting dur (at least one packet, at most 8 s). Audio playback pauses
// while the event is sent and resumes afterwards. Without a negotiated
// telephone-event payload type the digit is dropped.
func (s *Session) SendDTMF(digit byte, dur time.Duration) {
	ev, ok := DigitEvent(digit)
	if !ok {
		s.e.log.Warn("media: SendDTMF: not a DTMF digit", "digit", string(digit))
		return
	}
	samples := uint32(dur / (time.Second / 8000))
	samples = min(max(samples, samplesPerPacket), 0xffff)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.dtmfPT == 0 {
		s.e.log.Warn("media: SendDTMF without a telephone-event payload type")
		return
	}
	s.dtmfQ = append(s.dtmfQ, dtmfTx{event: ev, total: samples})
}

// SetHold stops (true) or resumes (false) sending. While held, playback
// and queued DTMF still advance with time, silently, so a prompt's OnDone
// still fires on time.
func (s *Session) SetHold(held bool) {
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
}

// Close stops the session; a playback's OnDone gets false. Idempotent.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	old := s.play
	s.play = nil
	s.dtmfQ = nil
	s.mu.Unlock()
	s.closedA.Store(true)
	s.sh.remove(s)
	s.sock.remove(s)
	s.e.mu.Lock()
	delete(s.e.sessions, s)
	s.e.mu.Unlock()
	s.e.nSessions.Add(-1)
	if old != nil && old.onDone != nil {
		old.onDone(false)
	}
}

// Stats returns the session counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	remote, latched := s.remote, s.latched
	s.mu.Unlock()
	st := SessionStats{
		PacketsSent:     s.sent.Load(),
		PacketsReceived: s.rcvd.Load(),
		Lost:            s.lost.Load(),
		RemoteLatched:   latched,
		Remote:          remote,
		Local:           s.sock.local,
		DigitsReceived:  s.digits.Load(),
	}
	if t := s.everRx.Load(); t != 0 {
		st.LastArrival = time.Unix(0, t)
	}
	if t := s.dtmfSentAt.Load(); t != 0 {
		st.LastDTMFStart = time.Unix(0, t)
	}
	return st
}

// receive handles one inbound packet on the receive goroutine.
func (s *Session) receive(h *rtp.Header, payload []byte, now time.Time) {
	if s.closedA.Load() {
		return
	}
	ns := now.UnixNano()
	s.lastRx.Store(ns)
	s.everRx.Store(ns)
	if s.inactiveFired.Load() {
		s.inactiveFired.Store(false)
	}
	s.rcvd.Add(1)
	if !s.heard.Load() {
		s.sock.markHeard(s)
	}

	// Loss from sequence gaps (RFC 3550 appendix A.1, simplified): a jump
	// ahead counts the missing numbers, late or duplicate packets count
	// nothing, a new SSRC or a jump beyond MAX_DROPOUT restarts.
	if !s.rxStarted || h.SSRC != s.rxSSRC.Load() {
		s.rxStarted = true
		s.rxSSRC.Store(h.SSRC)
		s.maxSeq = h.SequenceNumber
	} else if d := h.SequenceNumber - s.maxSeq; d != 0 && d < 0x8000 {
		if d > 1 && d <= 3000 {
			s.lost.Add(uint64(d - 1))
		}
		s.maxSeq = h.SequenceNumber
	}

	if s.cfg.OnPacket != nil {
		s.cfg.OnPacket(h, payload, now)
	}
	if t := s.tap.Load(); t != nil {
		s.relay(t, h, payload, now)
	}

	if pt := s.rxDTMFPT.Load(); pt != 0 && uint32(h.PayloadType) == pt {
		ev, err := ParseDTMFEvent(payload)
		if err != nil {
			return
		}
		// RFC 4733 section 2.5.2.2: all packets of one event carry the
		// event's start timestamp; a new timestamp is a new event, so two
		// presses of the same key are two events, and end-bit
		// retransmissions are the same event.
		if s.seenEvent(h.Timestamp) {
			return
		}
		d, ok := EventDigit(ev.Event)
		if !ok {
			return
		}
		s.digits.Add(1)
		if s.cfg.OnDigit != nil {
			s.cfg.OnDigit(d)
		}
	}
}

// seenEvent reports whether ts is a recent event timestamp, recording it
// if not.
func (s *Session) seenEvent(ts uint32) bool {
	for i := range s.evTS {
		if s.evValid[i] && s.evTS[i] == ts {
			return true
		}
	}
	s.evTS[s.evNext], s.evValid[s.evNext] = ts, true
	s.evNext = (s.evNext + 1) % len(s.evTS)
	return false
}
