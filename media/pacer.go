package media

import (
	"net"
	"sync"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
)

// shard is one pacer goroutine and the sessions it owns. The 20 ms grid
// is split into e.slots sub-slots; each session sits in one slot and gets
// one tick per 20 ms cycle. Deadlines are absolute (epoch + n * slot), so
// there is no drift; a late pacer runs the missed slots back to back.
type shard struct {
	e   *Engine
	idx int

	mu    sync.Mutex // guards slots and Session.slotPos
	slots [][]*Session

	// Scratch, owned by the pacer goroutine.
	batches  []sockBatch // indexed by poolSock.idx
	used     []int       // batches with packets this tick
	done     []doneCall
	inactive []func()
	hdr      rtp.Header
}

// sockBatch collects one socket's packets of a tick for one sendmmsg.
type sockBatch struct {
	ps   *poolSock
	msgs []ipv4.Message
	n    int
}

// doneCall is a deferred PlayOptions.OnDone(true).
type doneCall func(bool)

// add puts s in its slot.
func (sh *shard) add(s *Session) {
	sh.mu.Lock()
	sh.slots[s.slot] = append(sh.slots[s.slot], s)
	sh.mu.Unlock()
}

// remove takes s out of its slot.
func (sh *shard) remove(s *Session) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.slots[s.slot]
	for i, x := range l {
		if x == s {
			last := len(l) - 1
			l[i] = l[last]
			l[last] = nil
			sh.slots[s.slot] = l[:last]
			return
		}
	}
}

// run is the pacer loop.
func (sh *shard) run() {
	e := sh.e
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Shards are staggered inside a slot to spread the sends further.
	deadline := e.epoch.Add(e.slotDur * time.Duration(sh.idx) / time.Duration(len(e.shards)))
	slot, cycle := 0, int64(0)
	for {
		now := time.Now()
		if wait := deadline.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-e.done:
				return
			}
			now = time.Now()
		} else if e.isClosed() {
			return
		}
		lag := now.Sub(deadline)
		e.ticks.Add(1)
		if lag > lateThreshold {
			e.late.Add(1)
		}
		for {
			m := e.maxLag.Load()
			if int64(lag) <= m || e.maxLag.CompareAndSwap(m, int64(lag)) {
				break
			}
		}
		if lag > resyncLag {
			skip := int64(lag / ptime)
			cycle += skip
			deadline = deadline.Add(time.Duration(skip) * ptime)
		}
		sh.tick(slot, cycle, now)
		slot++
		if slot == e.slots {
			slot = 0
			cycle++
		}
		deadline = deadline.Add(e.slotDur)
	}
}

// tick sends the packets of one slot of one cycle and then runs the
// callbacks it collected, with no lock held.
func (sh *shard) tick(slot int, cycle int64, now time.Time) {
	e := sh.e
	sweep := e.sweep > 0 && slot == 0 && cycle%e.sweep == 0
	sh.mu.Lock()
	for _, s := range sh.slots[slot] {
		sh.session(s, cycle, now)
	}
	if sweep {
		sh.sweepLocked(now)
	}
	sh.mu.Unlock()
	sh.flush()
	for i, f := range sh.done {
		f(true)
		sh.done[i] = nil
	}
	sh.done = sh.done[:0]
	for i, f := range sh.inactive {
		f()
		sh.inactive[i] = nil
	}
	sh.inactive = sh.inactive[:0]
}

// sweepLocked fires OnInactive for sessions that heard nothing for
// InactivityTimeout (once, re-armed by the next packet).
func (sh *shard) sweepLocked(now time.Time) {
	limit := now.Add(-sh.e.cfg.InactivityTimeout).UnixNano()
	for _, l := range sh.slots {
		for _, s := range l {
			if s.cfg.OnInactive == nil || s.inactiveFired.Load() || s.lastRx.Load() > limit {
				continue
			}
			s.inactiveFired.Store(true)
			sh.inactive = append(sh.inactive, s.cfg.OnInactive)
		}
	}
}

// session advances one session by one 20 ms tick and queues its packet.
func (sh *shard) session(s *Session, cycle int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if !s.started {
		s.started, s.cycle0 = true, cycle
	}
	// The media clock follows wall time, also while idle, so a new
	// talkspurt's timestamp jumps by the silence (RFC 3550 section 5.1).
	ts := s.tsBase + uint32(cycle-s.cycle0)*samplesPerPacket
	send := !s.held && s.ua != nil

	if len(s.dtmfQ) > 0 {
		s.talking = false // audio resumes with a new talkspurt
		d := &s.dtmfQ[0]
		ev := DTMFEvent{Event: d.event, Volume: 10}
		marker := false
		if !d.started {
			// RFC 4733 section 2.5.1.1: the first packet has the marker
			// bit and the event's start timestamp, which all its packets keep.
			d.started, d.ts, marker = true, ts, true
			s.dtmfSentAt.Store(now.UnixNano())
		}
		if d.elapsed < d.total {
			d.elapsed = min(d.elapsed+samplesPerPacket, d.total)
		}
		ev.Duration = uint16(d.elapsed)
		if d.elapsed >= d.total {
			// Section 2.5.1.4: the end packet is sent three times with the
			// same timestamp and duration (new sequence numbers).
			ev.End = true
			d.endSent++
			if d.endSent >= dtmfEndRepeats {
				s.dtmfQ = s.dtmfQ[1:]
			}
		}
		if send {
			sh.emit(s, s.dtmfPT, marker, d.ts, func(b []byte) int { return ev.MarshalTo(b) }, dtmfEventSize)
		}
		return
	}

	p := s.play
	if p == nil {
		s.talking = false
		return
	}
	frame := p.frames[p.pos]
	p.pos++
	if p.pos == len(p.frames) {
		if p.loop {
			p.pos = 0
		} else {
			s.play = nil
			if p.onDone != nil {
				sh.done = append(sh.done, p.onDone)
			}
		}
	}
	if !send {
		s.talking = false
		return
	}
	marker := !s.talking
	s.talking = true
	sh.emit(s, s.audioPT, marker, ts, func(b []byte) int { return copy(b, frame) }, len(frame))
}

// emit builds one RTP packet of s into the shard's batch for s's socket.
// Called with s.mu held.
func (sh *shard) emit(s *Session, pt uint8, marker bool, ts uint32, fill func([]byte) int, size int) {
	h := &sh.hdr
	h.Version = 2
	h.Marker = marker
	h.PayloadType = pt
	h.SequenceNumber = s.seq
	h.Timestamp = ts
	h.SSRC = s.ssrc
	s.seq++
	hs := h.MarshalSize()
	buf := sh.packet(s.sock, s.ua, hs+size)
	if _, err := h.MarshalTo(buf); err != nil {
		sh.drop(s.sock)
		return
	}
	fill(buf[hs:])
	s.sent.Add(1)
}

// packet reserves a message in ps's batch and returns its buffer.
func (sh *shard) packet(ps *poolSock, ua *net.UDPAddr, size int) []byte {
	for len(sh.batches) <= ps.idx {
		sh.batches = append(sh.batches, sockBatch{})
	}
	b := &sh.batches[ps.idx]
	if b.n == 0 {
		b.ps = ps
		sh.used = append(sh.used, ps.idx)
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

// drop takes back the last reserved message (marshal failure).
func (sh *shard) drop(ps *poolSock) {
	b := &sh.batches[ps.idx]
	b.n--
	if b.n == 0 {
		sh.used = sh.used[:len(sh.used)-1]
	}
}

// flush sends every socket's batch with sendmmsg.
func (sh *shard) flush() {
	e := sh.e
	var pkts, bytes, errs, calls uint64
	for _, idx := range sh.used {
		b := &sh.batches[idx]
		msgs := b.msgs[:b.n]
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
				// Skip the message the kernel refused and go on.
				errs++
				if len(msgs) > 0 {
					msgs = msgs[1:]
				}
				if err != nil && !e.isClosed() {
					e.log.Debug("media: send", "local", b.ps.local, "err", err)
				}
			}
		}
		b.n = 0
	}
	sh.used = sh.used[:0]
	e.pktSent.Add(pkts)
	e.sendCalls.Add(calls)
	e.bytesSent.Add(bytes)
	if errs > 0 {
		e.sendErr.Add(errs)
	}
}
