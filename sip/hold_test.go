package sip

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/pion/rtp"
)

// TestHoldSurvivesInactivity: a call the far end holds (a=inactive,
// a=sendonly without music, c=0.0.0.0) hears no RTP for longer than the
// engine's inactivity timeout and stays up; after the unhold, a far end
// that stays silent is hung up one timeout after the unhold (re-armed
// from the unhold, not at once), with a BYE.
func TestHoldSurvivesInactivity(t *testing.T) {
	const timeout = 400 * time.Millisecond
	holds := []struct {
		name string
		sdp  func(u *uac) string
	}{
		{"inactive", func(u *uac) string { return u.offerSDP("a=inactive") }},
		{"sendonly", func(u *uac) string { return u.offerSDP("a=sendonly") }},
		{"c=0.0.0.0", func(u *uac) string {
			return strings.Replace(u.offerSDP("a=sendrecv"), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1)
		}},
	}
	for _, h := range holds {
		t.Run(h.name, func(t *testing.T) {
			answered := make(chan ivr.Call, 1)
			srv := startServer(t, holdHandler(answered), func(m *media.Config, _ *Config) { m.InactivityTimeout = timeout })
			u := newUAC(t, srv.Addr(), "udp")
			r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv"))
			if r.StatusCode != 200 {
				t.Fatalf("INVITE: %d", r.StatusCode)
			}
			u.ack(hotlineURI, "", "")
			_, rtpTo := sdpRemote(t, r.Body())
			// The phone talks until it holds, so that only the hold's
			// silence can reach the timeout (however slow the machine).
			talking := make(chan struct{})
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				h := rtp.Header{Version: 2, PayloadType: 8, SSRC: 0x1234}
				payload := make([]byte, 160)
				for {
					h.SequenceNumber++
					h.Timestamp += 160
					b, _ := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
					_, _ = u.rtp.WriteToUDPAddrPort(b, rtpTo)
					select {
					case <-talking:
						return
					case <-tick.C:
					}
				}
			}()
			c := (<-answered).(*call)

			if r := u.invite(hotlineURI, nil, "application/sdp", h.sdp(u)); r.StatusCode != 200 {
				close(talking)
				t.Fatalf("hold: %d", r.StatusCode)
			}
			u.ack(hotlineURI, "", "")
			close(talking)
			<-stopped

			// The engine does fire during the hold, and the call stays.
			waitFor(t, "the engine's inactivity callback during the hold", 10*time.Second, func() bool {
				c.idle.mu.Lock()
				defer c.idle.mu.Unlock()
				return c.idle.fired
			})
			// Hangup sends the BYE first and ends the call after its
			// answer: look at the start of a hangup, not at Done.
			hungUp := func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.hangingUp || c.ended
			}
			time.Sleep(2 * timeout) // more silence than the timeout, still held
			if hungUp() {
				t.Fatal("the held call was hung up on RTP inactivity")
			}
			if got := srv.ActiveCalls(); got != 1 {
				t.Fatalf("%d active calls during the hold, want 1", got)
			}
			c.idle.mu.Lock()
			measured := c.idle.timeout
			c.idle.mu.Unlock()
			if measured < timeout {
				t.Fatalf("measured inactivity timeout %v, below the engine's %v", measured, timeout)
			}

			// Unhold, and stay silent: hung up, one timeout after the unhold.
			unhold := time.Now()
			if r := u.invite(hotlineURI, nil, "application/sdp", u.offerSDP("a=sendrecv")); r.StatusCode != 200 {
				t.Fatalf("unhold: %d", r.StatusCode)
			}
			u.ack(hotlineURI, "", "")
			go func() { _, _ = u.read(10 * time.Second) }()
			select {
			case <-u.byes:
			case <-time.After(10 * time.Second):
				t.Fatal("no BYE for a silent call after the unhold")
			}
			if d := time.Since(unhold); d < timeout {
				t.Fatalf("BYE %v after the unhold, before the timeout %v", d, timeout)
			}
			<-c.Done()
			waitFor(t, "call released", 2*time.Second, func() bool { return srv.ActiveCalls() == 0 })
			if !strings.Contains(srv.logs.String(), "reason=\"rtp timeout\"") {
				t.Fatalf("the call did not end on RTP timeout:\n%s", srv.logs.String())
			}
		})
	}
}

// TestIdleGuard: the guard's decisions on the engine's callback, with a
// fake last-packet time and the real clock (timeouts of 100 ms).
func TestIdleGuard(t *testing.T) {
	const timeout = 100 * time.Millisecond
	type env struct {
		g       *idleGuard
		hangups chan time.Time
		setRx   func(time.Time)
	}
	newEnv := func() *env {
		var mu sync.Mutex
		var rx time.Time
		e := &env{hangups: make(chan time.Time, 4)}
		e.setRx = func(at time.Time) { mu.Lock(); rx = at; mu.Unlock() }
		e.g = newIdleGuard(func() time.Time { mu.Lock(); defer mu.Unlock(); return rx },
			func() { e.hangups <- time.Now() })
		// The session started one timeout ago: the engine fires now.
		e.g.start = time.Now().Add(-timeout)
		t.Cleanup(e.g.stop)
		return e
	}
	// hungUpAfter expects a hangup no sooner than timeout after from.
	hungUpAfter := func(t *testing.T, e *env, from time.Time) {
		t.Helper()
		select {
		case at := <-e.hangups:
			if d := at.Sub(from); d < timeout {
				t.Fatalf("hung up %v after the unhold, before the timeout", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no hangup")
		}
	}
	noHangup := func(t *testing.T, e *env) {
		t.Helper()
		select {
		case <-e.hangups:
			t.Fatal("hung up")
		case <-time.After(4 * timeout): // past any re-armed timeout
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"not held: hangs up", func(t *testing.T, e *env) {
			e.g.inactive()
			select {
			case <-e.hangups:
			default:
				t.Fatal("no hangup for a silent call that is not held")
			}
		}},
		{"held: ignored, re-armed from the unhold", func(t *testing.T, e *env) {
			e.g.setHeld(true)
			e.g.inactive()
			if len(e.hangups) != 0 {
				t.Fatal("hung up a held call")
			}
			unhold := time.Now()
			e.g.setHeld(false)
			hungUpAfter(t, e, unhold)
		}},
		{"hold shorter than the timeout: counted from the unhold", func(t *testing.T, e *env) {
			e.g.setHeld(true)
			unhold := time.Now()
			e.g.setHeld(false)
			e.g.inactive() // silent since before the hold
			if len(e.hangups) != 0 {
				t.Fatal("hung up at once after the unhold")
			}
			hungUpAfter(t, e, unhold)
		}},
		{"a packet after the unhold: the peer is back", func(t *testing.T, e *env) {
			e.g.setHeld(true)
			e.g.inactive()
			e.g.setHeld(false)
			e.setRx(time.Now())
			noHangup(t, e)
		}},
		{"held again before the re-armed timeout", func(t *testing.T, e *env) {
			e.g.setHeld(true)
			e.g.inactive()
			e.g.setHeld(false)
			e.g.setHeld(true)
			noHangup(t, e)
		}},
		{"ended: disarmed", func(t *testing.T, e *env) {
			e.g.setHeld(true)
			e.g.inactive()
			e.g.setHeld(false)
			e.g.stop()
			e.g.inactive()
			noHangup(t, e)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newEnv()) })
	}
}
