package media

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
)

// recvLoop reads datagrams of one pool socket in batches (recvmmsg),
// parses the RTP header into a reused rtp.Header and hands each packet to
// its session. It is the only goroutine that touches the receive-side
// state of the sessions on this socket.
func (e *Engine) recvLoop(ps *poolSock) {
	defer e.wg.Done()
	msgs := make([]ipv4.Message, recvBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
	}
	var h rtp.Header
	for {
		n, err := ps.pc.ReadBatch(msgs, 0)
		if err != nil {
			if e.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("media: receive", "local", ps.local, "err", err)
			time.Sleep(time.Millisecond) // do not spin on a persistent error
			continue
		}
		now := time.Now()
		var bytes, unknown, malformed, rtcp uint64
		for i := range n {
			m := &msgs[i]
			bytes += uint64(m.N)
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				malformed++
				continue
			}
			ap := ua.AddrPort()
			src := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			buf := m.Buffers[0][:m.N]
			hn, err := h.Unmarshal(buf)
			if err != nil || h.Version != 2 {
				malformed++
				continue
			}
			if h.PayloadType >= 64 && h.PayloadType <= 95 {
				// RTCP multiplexed on the RTP port (RFC 5761 section 4):
				// packet types 192-223 read as RTP payload types 64-95.
				rtcp++
				continue
			}
			payload := buf[hn:]
			if h.Padding {
				// RFC 3550 section 5.1: the last octet counts the padding.
				if len(payload) == 0 || int(payload[len(payload)-1]) > len(payload) || payload[len(payload)-1] == 0 {
					malformed++
					continue
				}
				payload = payload[:len(payload)-int(payload[len(payload)-1])]
			}
			s := ps.lookup(src, h.SSRC)
			if s == nil {
				unknown++
				continue
			}
			s.receive(&h, payload, now)
		}
		ps.out.flush(e) // packets relayed to other sessions (relay.go)
		e.recvCalls.Add(1)
		e.pktRecv.Add(uint64(n))
		e.bytesRecv.Add(bytes)
		if unknown > 0 {
			e.unknown.Add(unknown)
		}
		if rtcp > 0 {
			e.rtcp.Add(rtcp)
		}
		if malformed > 0 {
			e.malformed.Add(malformed)
		}
	}
}

// lookup finds the session of an inbound packet: by exact source address
// first, then by the latching rule (see latch).
func (ps *poolSock) lookup(src netip.AddrPort, ssrc uint32) *Session {
	ps.mu.RLock()
	es := ps.byRemote[src]
	var s *Session
	switch len(es) {
	case 0:
	case 1:
		s = es[0]
	default:
		s = pickBySSRC(es, ssrc)
	}
	ps.mu.RUnlock()
	if s != nil {
		return s
	}
	return ps.latch(src)
}

// pickBySSRC disambiguates sessions that share a (socket, remote) pair,
// which only happens when the pool could not keep the pair unique (a
// remote set late by SetRemote, or MaxSockets reached): a session that has
// already heard this SSRC wins, else the oldest that has heard nothing.
func pickBySSRC(es []*Session, ssrc uint32) *Session {
	var fresh *Session
	for _, s := range es {
		if !s.heard.Load() {
			if fresh == nil {
				fresh = s
			}
			continue
		}
		if s.rxSSRC.Load() == ssrc {
			return s
		}
	}
	return fresh
}

// Latching rule (symmetric RTP, RFC 4961; "comedia" latching as in RFC
// 4145 deployments). A packet whose source matches no session may be given
// to a session on the same pool socket that has not received any packet
// yet ("nothing heard"; re-armed when SetRemote changes the address) and
// whose expected remote
//
//   - is not known yet (invalid AddrPort: we made the offer and the answer
//     has not been applied, or a late offer), or
//   - has the same IP, only the port differs (a NAT that rewrites ports), or
//   - has a private, shared (100.64/10), link-local or unspecified IP, i.e.
//     the far end wrote its inside address into the SDP from behind a NAT.
//
// It latches only when exactly ONE session of the socket qualifies: with
// two candidates we cannot know which call the packet belongs to (on a
// load generator or behind one SBC, all peers share an IP), so the packet
// is dropped and counted in DroppedUnknownSource rather than given to the
// wrong call. To make ambiguity rare, NewSession puts a session that may
// need latching (remote unknown or NAT-inside) on a socket that has no
// other such session pending, growing the pool if needed. After latching,
// we send to the packet's source. Sources that qualify for nothing are
// counted in DroppedUnknownSource and dropped.
func (ps *poolSock) latch(src netip.AddrPort) *Session {
	// Cheap exits first: a flood from unknown sources must not cost a
	// scan, let alone the write lock, once every session has heard its peer.
	if ps.unheard.Load() == 0 {
		return nil
	}
	ps.mu.RLock()
	cand := ps.latchCandidateLocked(src)
	ps.mu.RUnlock()
	if cand == nil {
		return nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if es := ps.byRemote[src]; len(es) > 0 {
		return es[0]
	}
	best := ps.latchCandidateLocked(src)
	if best == nil {
		return nil
	}
	ps.moveLocked(best, src)
	best.mu.Lock()
	best.setRemoteLocked(src)
	best.latched = true
	best.mu.Unlock()
	return best
}

// latchCandidateLocked applies the latching rule. Called with ps.mu held
// (read or write).
func (ps *poolSock) latchCandidateLocked(src netip.AddrPort) *Session {
	var cand *Session
	for _, s := range ps.all {
		if s.heard.Load() || s.closedA.Load() || s.awaiting() || !latchEligible(s.key, src) {
			continue
		}
		if cand != nil {
			return nil // ambiguous
		}
		cand = s
	}
	return cand
}

// pendingLatch reports whether a session on ps may still latch from an
// unexpected source (nothing heard, remote unknown or NAT-inside).
func (ps *poolSock) pendingLatch() bool {
	if ps.unheard.Load() == 0 {
		return false
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for _, s := range ps.all {
		if !s.heard.Load() && !s.closedA.Load() && !s.awaiting() && needsLatch(s.key) {
			return true
		}
	}
	return false
}

// markHeard takes s out of the unheard count, once (first packet or
// removal, whichever comes first).
func (ps *poolSock) markHeard(s *Session) {
	if s.heard.CompareAndSwap(false, true) {
		ps.unheard.Add(-1)
	}
}

// awaiting reports a session whose remote will come from signalling
// (SessionConfig.AwaitRemote) and has not yet. Called with ps.mu held.
func (s *Session) awaiting() bool {
	return s.cfg.AwaitRemote && !s.key.IsValid()
}

// latchEligible reports whether a session expecting exp may latch to a
// packet from src.
func latchEligible(exp, src netip.AddrPort) bool {
	return needsLatch(exp) || exp.Addr() == src.Addr()
}

// needsLatch reports a remote we cannot send to as is: unknown, or an
// address from inside a NAT.
func needsLatch(exp netip.AddrPort) bool {
	return !exp.IsValid() || isNATInside(exp.Addr())
}

// isNATInside reports addresses a far end behind a NAT would put in SDP.
func isNATInside(a netip.Addr) bool {
	if a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return true
	}
	return a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a) // RFC 6598
}

// addLocked registers s under key on the socket. Called with ps.mu held.
func (ps *poolSock) addLocked(s *Session, key netip.AddrPort) {
	s.key = key
	ps.byRemote[key] = append(ps.byRemote[key], s)
	ps.all = append(ps.all, s)
	ps.unheard.Add(1)
}

// moveLocked re-keys s to key. Called with ps.mu held.
func (ps *poolSock) moveLocked(s *Session, key netip.AddrPort) {
	ps.unkeyLocked(s)
	s.key = key
	ps.byRemote[key] = append(ps.byRemote[key], s)
}

// unkeyLocked removes s from byRemote. Called with ps.mu held.
func (ps *poolSock) unkeyLocked(s *Session) {
	es := ps.byRemote[s.key]
	for i, x := range es {
		if x == s {
			es = append(es[:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(ps.byRemote, s.key)
	} else {
		ps.byRemote[s.key] = es
	}
}

// remove forgets s.
func (ps *poolSock) remove(s *Session) {
	ps.markHeard(s)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.unkeyLocked(s)
	for i, x := range ps.all {
		if x == s {
			ps.all = append(ps.all[:i], ps.all[i+1:]...)
			break
		}
	}
}

// usedBy reports whether a session on this socket already has remote key.
func (ps *poolSock) usedBy(key netip.AddrPort) bool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return len(ps.byRemote[key]) > 0
}

// load is the number of sessions on the socket.
func (ps *poolSock) load() int {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return len(ps.all)
}
