package sip

import (
	"sync"
	"time"
)

// idleGuard decides what the media engine's inactivity callback (no
// inbound RTP for media.Config.InactivityTimeout) means for a dialog whose
// far end may put the call on hold.
//
// A far end that holds with a=inactive or c=0.0.0.0 (RFC 3264 §8.4, RFC
// 2543) sends no RTP at all, and one that holds with a=sendonly may send
// none either (no music on hold). Silence is then what it announced, not a
// dead peer, so the callback is ignored while held. The engine fires once
// per silence and re-arms only on the next packet; so after an unhold the
// guard re-arms the timeout itself: if no packet arrives within the
// timeout of the unhold, the call is hung up as before.
//
// The engine's timeout is not exported to the plane; the guard measures it
// from the first callback (time since the last packet, or since the
// session started): at least the real timeout, a sweep period more at
// most, which only makes a re-armed timeout end a little later.
type idleGuard struct {
	lastRx func() time.Time // last inbound packet; zero: none yet
	hangup func()           // ends the dialog (in the background)

	mu       sync.Mutex
	start    time.Time     // the RTP session was created
	held     bool          // the far end holds the call
	fired    bool          // the engine fired and will not again before a packet
	unheldAt time.Time     // last unhold
	timeout  time.Duration // measured engine timeout; 0 until the first callback
	timer    *time.Timer   // the re-armed timeout after an unhold
	stopped  bool
}

func newIdleGuard(lastRx func() time.Time, hangup func()) *idleGuard {
	return &idleGuard{lastRx: lastRx, hangup: hangup, start: time.Now()}
}

// setHeld records the far end's hold state from its latest SDP.
func (g *idleGuard) setHeld(held bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if held == g.held || g.stopped {
		return
	}
	g.held = held
	g.stopTimerLocked()
	if held {
		return
	}
	g.unheldAt = time.Now()
	if g.fired && g.timeout > 0 {
		// The engine stays quiet until a packet arrives: re-arm here.
		g.armLocked(g.timeout)
	}
}

// inactive is the engine's OnInactive: it hangs up unless the silence is
// explained by a hold, or by an unhold more recent than the timeout.
func (g *idleGuard) inactive() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	now := time.Now()
	since := g.start
	if last := g.lastRx(); last.After(since) {
		since = last
	}
	if d := now.Sub(since); g.timeout == 0 || d < g.timeout {
		g.timeout = d
	}
	g.fired = true
	switch {
	case g.held:
		g.mu.Unlock()
		return
	case !g.unheldAt.IsZero() && now.Sub(g.unheldAt) < g.timeout:
		// Silent since before a recent unhold: count from the unhold.
		g.stopTimerLocked()
		g.armLocked(g.timeout - now.Sub(g.unheldAt))
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.hangup()
}

func (g *idleGuard) armLocked(d time.Duration) {
	unheldAt := g.unheldAt
	g.timer = time.AfterFunc(d, func() { g.check(unheldAt) })
}

// check runs when a re-armed timeout expires: a packet since the unhold
// means the peer is back (and the engine re-armed itself on it).
func (g *idleGuard) check(unheldAt time.Time) {
	g.mu.Lock()
	if g.stopped || g.held || !g.unheldAt.Equal(unheldAt) || g.lastRx().After(unheldAt) {
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.hangup()
}

func (g *idleGuard) stopTimerLocked() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
}

// stop disarms the guard when the dialog ends.
func (g *idleGuard) stop() {
	g.mu.Lock()
	g.stopped = true
	g.stopTimerLocked()
	g.mu.Unlock()
}
