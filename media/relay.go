package media

import (
	"net"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
)

// Relaying between sessions (the sip plane's bridge, B2BUA): a packet
// received on one session is rewritten on the receive goroutine into a
// packet of another session (that session's SSRC, sequence numbers,
// timestamps and payload type: each leg keeps its own RTP identity, RFC 3550
// section 8.2 / RFC 7667 section 3.2.2) and queued on the receive
// goroutine's outbox; the outbox is sent with one sendmmsg per destination
// socket at the end of each recvmmsg batch. No goroutine or timer per packet
// or per call, and no pacer delay: a relayed packet leaves within the same
// batch it arrived in.

// tap is what a session does with its inbound packets besides counting
// them: relay them to another session, or hand them to a sink (the mixer).
type tap struct {
	dst  *Session
	xlat *[256]byte // G.711 law translation, nil when both legs agree
	sink func(h *rtp.Header, payload []byte)

	// Rewriting state, touched only by the source's receive goroutine.
	inSSRC  uint32
	tsOff   uint32
	started bool
}

// RelayTo forwards the audio this session receives to dst (nil stops
// relaying). RFC 4733 telephone-events are not forwarded: the caller
// regenerates digits on dst with SendDTMF, since the two legs may use
// different payload types. xlat, when not nil, translates each payload byte
// (ALawToULaw or ULawToALaw). Packets are dropped while dst is held or has
// no remote address.
func (s *Session) RelayTo(dst *Session, xlat *[256]byte) {
	if dst == nil {
		s.tap.Store(nil)
		return
	}
	s.tap.Store(&tap{dst: dst, xlat: xlat})
}

// SetSink hands every inbound audio packet (not telephone-events) to f on
// the receive goroutine (nil stops). f must not retain h or payload and
// must return quickly. It replaces RelayTo.
func (s *Session) SetSink(f func(h *rtp.Header, payload []byte)) {
	if f == nil {
		s.tap.Store(nil)
		return
	}
	s.tap.Store(&tap{sink: f})
}

// relay runs on the receive goroutine for every packet of s.
func (s *Session) relay(t *tap, h *rtp.Header, payload []byte, now time.Time) {
	if pt := s.rxDTMFPT.Load(); pt != 0 && uint32(h.PayloadType) == pt {
		return
	}
	if h.PayloadType == 13 {
		return // comfort noise (RFC 3389): the other leg did not negotiate it
	}
	if t.sink != nil {
		t.sink(h, payload)
		return
	}
	d := t.dst
	d.mu.Lock()
	if d.closed || d.held || d.ua == nil {
		d.mu.Unlock()
		return
	}
	marker := h.Marker
	if !t.started || h.SSRC != t.inSSRC {
		// A new source (or the first packet): map its timestamps onto dst's
		// media clock now, and start a talkspurt.
		t.started, t.inSSRC, marker = true, h.SSRC, true
		t.tsOff = d.clockLocked(now) - h.Timestamp
	}
	out := rtp.Header{
		Version:        2,
		Marker:         marker,
		PayloadType:    d.audioPT,
		SequenceNumber: d.seq,
		Timestamp:      h.Timestamp + t.tsOff,
		SSRC:           d.ssrc,
	}
	d.seq++
	d.talking = true
	ua := d.ua
	d.mu.Unlock()
	buf := s.sock.out.packet(d.sock, ua, out.MarshalSize()+len(payload))
	n, err := out.MarshalTo(buf)
	if err != nil {
		s.sock.out.drop(d.sock)
		return
	}
	if t.xlat != nil {
		for i, b := range payload {
			buf[n+i] = t.xlat[b]
		}
	} else {
		copy(buf[n:], payload)
	}
	d.sent.Add(1)
}

// clockLocked is the session's RTP clock at now: the timestamp the pacer
// would give a packet sent now. Called with s.mu held.
func (s *Session) clockLocked(now time.Time) uint32 {
	if !s.started {
		// The pacer has not ticked for us yet: it will start at tsBase.
		return s.tsBase
	}
	start := s.e.epoch.Add(time.Duration(s.cycle0) * ptime)
	return s.tsBase + uint32(now.Sub(start)/(time.Second/8000))
}

// SendFrame sends one audio payload at once (the mixer's output), with
// this session's SSRC, next sequence number and its media clock. Dropped
// while held or without a remote address.
func (s *Session) SendFrame(payload []byte, marker bool) {
	s.mu.Lock()
	if s.closed || s.held || s.ua == nil {
		s.mu.Unlock()
		return
	}
	h := rtp.Header{Version: 2, Marker: marker || !s.talking, PayloadType: s.audioPT,
		SequenceNumber: s.seq, Timestamp: s.clockLocked(time.Now()), SSRC: s.ssrc}
	s.seq++
	s.talking = true
	ua := s.ua
	s.mu.Unlock()
	buf := make([]byte, h.MarshalSize()+len(payload))
	n, err := h.MarshalTo(buf)
	if err != nil {
		return
	}
	copy(buf[n:], payload)
	if _, err := s.sock.conn.WriteToUDP(buf, ua); err != nil {
		s.e.sendErr.Add(1)
		return
	}
	s.sent.Add(1)
	s.e.pktSent.Add(1)
	s.e.sendCalls.Add(1)
	s.e.bytesSent.Add(uint64(len(buf)))
}

// outbox collects the packets relayed while one receive batch is handled,
// per destination socket. Owned by one socket's receive goroutine.
type outbox struct {
	batches []sockBatch // indexed by poolSock.idx
	used    []int
}

func (o *outbox) packet(ps *poolSock, ua *net.UDPAddr, size int) []byte {
	for len(o.batches) <= ps.idx {
		o.batches = append(o.batches, sockBatch{})
	}
	b := &o.batches[ps.idx]
	if b.n == 0 {
		b.ps = ps
		o.used = append(o.used, ps.idx)
	}
	if b.n == len(b.msgs) {
		b.msgs = append(b.msgs, ipv4.Message{Buffers: [][]byte{make([]byte, 256)}})
	}
	m := &b.msgs[b.n]
	b.n++
	buf := m.Buffers[0]
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	m.Buffers[0] = buf[:size]
	m.Addr = ua
	return m.Buffers[0]
}

func (o *outbox) drop(ps *poolSock) {
	b := &o.batches[ps.idx]
	b.n--
	if b.n == 0 {
		o.used = o.used[:len(o.used)-1]
	}
}

// flush sends the relayed packets, one sendmmsg per destination socket.
func (o *outbox) flush(e *Engine) {
	if len(o.used) == 0 {
		return
	}
	var pkts, bytes, errs, calls uint64
	for _, idx := range o.used {
		b := &o.batches[idx]
		msgs := b.msgs[:b.n]
		if len(msgs) == 1 {
			// A single packet: sendto costs less than x/net's sendmmsg
			// wrapper (it packs headers from a pool).
			m := &msgs[0]
			n, err := b.ps.conn.WriteToUDP(m.Buffers[0], m.Addr.(*net.UDPAddr))
			calls++
			if err != nil {
				errs++
			} else {
				pkts++
				bytes += uint64(n)
			}
			b.n = 0
			continue
		}
		for len(msgs) > 0 {
			chunk := msgs[:min(len(msgs), maxSendBatch)]
			n, err := b.ps.pc.WriteBatch(chunk, 0)
			calls++
			for i := range max(n, 0) {
				bytes += uint64(len(chunk[i].Buffers[0]))
			}
			pkts += uint64(max(n, 0))
			msgs = msgs[max(n, 0):]
			if err != nil || n <= 0 {
				errs++
				if len(msgs) > 0 {
					msgs = msgs[1:]
				}
			}
		}
		b.n = 0
	}
	o.used = o.used[:0]
	e.pktSent.Add(pkts)
	e.sendCalls.Add(calls)
	e.bytesSent.Add(bytes)
	if errs > 0 {
		e.sendErr.Add(errs)
	}
}
