package arifake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cq12345/hotline/ari"
)

// Endpoint says what a PJSIP endpoint does when the app originates a call
// to it (transcripts bridge-to-agent, agent-no-answer, transfer-12315).
type Endpoint struct {
	// AnswerAfter: it rings, then answers after this long.
	AnswerAfter time.Duration
	// NoAnswer: it rings until the originate timeout; Asterisk then
	// destroys the leg with cause 19 and nothing else.
	NoAnswer bool
	// Busy: it answers 486 at once (cause 17).
	Busy bool
	// HangUpAfter: once answered, it hangs up (a BYE) after this long;
	// 0: it stays until hung up.
	HangUpAfter time.Duration
}

// SetEndpoint configures an endpoint ("PJSIP/agent1",
// "PJSIP/12315@trunk12315"). Originating to an unconfigured endpoint gets
// a 400 (a fake's choice: Asterisk's reply for that was not recorded).
func (s *Server) SetEndpoint(name string, e Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints[name] = e
}

type bridge struct {
	id, name string
	created  time.Time
	members  []*channel
	used     bool // had a channel: the app is subscribed to it
}

func (b *bridge) model() ari.Bridge {
	ids := []string{}
	for _, m := range b.members {
		ids = append(ids, m.id)
	}
	talker := "talker"
	return ari.Bridge{ID: b.id, Technology: "simple_bridge", BridgeType: "mixing", BridgeClass: "stasis",
		Creator: "Stasis", Name: b.name, Channels: ids, Creationtime: ari.Time{Time: b.created}, VideoMode: &talker}
}

func (s *Server) dial(ch *channel, status string) *ari.Dial {
	ds := strings.TrimPrefix(ch.endpoint, "PJSIP/")
	empty := ""
	return &ari.Dial{EventBase: s.base("Dial"), Dialstatus: status, Dialstring: &ds, Forward: &empty, Peer: ch.snapshot(s.app)}
}

// later runs f after d under s.mu, unless the fake was closed.
func (s *Server) laterLocked(d time.Duration, f func() func()) {
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		wait := f()
		s.mu.Unlock()
		wait()
	})
	s.timers = append(s.timers, t)
}

func joinWaits(ws ...func()) func() {
	return func() {
		for _, w := range ws {
			w()
		}
	}
}

// originate: POST /channels. Asterisk replies 200 with the channel in state
// Down before any event about it; the app gets no ChannelCreated, the first
// event is Dial("").
func (s *Server) originate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("endpoint")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "endpoint: missing required parameter"})
		return
	}
	if q.Get("app") != s.app {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "fake supports originate into the app only"})
		return
	}
	timeout := 30
	if v := q.Get("timeout"); v != "" {
		timeout, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	ep, ok := s.endpoints[name]
	if !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Endpoint not configured in the fake"})
		return
	}
	s.seq++
	id := q.Get("channelId")
	if id == "" {
		id = fmt.Sprintf("1795835307.%d", 8000+s.seq)
	}
	if s.channels[id] != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"message": "Channel with given unique ID already exists"})
		return
	}
	args := []string{}
	if a := q.Get("appArgs"); a != "" {
		args = strings.Split(a, ",")
	}
	// Asterisk names the channel after the endpoint, not the dial string:
	// PJSIP/12315@trunk12315 gives PJSIP/trunk12315-0000001a, and
	// PJSIP/trunk/sip:12315@host gives PJSIP/trunk-0000001b.
	chName := name
	if rest, ok := strings.CutPrefix(name, "PJSIP/"); ok {
		if ep, _, ok := strings.Cut(rest, "/"); ok {
			chName = "PJSIP/" + ep
		} else if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			chName = "PJSIP/" + rest[at+1:]
		}
	}
	// callerId is "name" <number> or a bare number.
	caller := "12345"
	if cid := q.Get("callerId"); cid != "" {
		caller = cid
		if i, j := strings.IndexByte(cid, '<'), strings.IndexByte(cid, '>'); i >= 0 && j > i {
			caller = cid[i+1 : j]
		}
	}
	ch := &channel{
		id: id, name: fmt.Sprintf("%s-%08x", chName, s.seq), state: "Down",
		caller: caller, exten: "s", args: args, created: time.Now(),
		originated: true, endpoint: name, vars: map[string]string{},
	}
	// The JSON body's variables are set on the channel (PJSIP_HEADER(add,…)
	// ones become headers of the INVITE in a real Asterisk).
	var body struct {
		Variables map[string]string `json:"variables"`
	}
	if r.Body != nil && json.NewDecoder(r.Body).Decode(&body) == nil {
		for k, v := range body.Variables {
			ch.vars[k] = v
		}
	}
	s.channels[id] = ch
	reply := ch.snapshot(s.app)
	reply.Dialplan = ari.DialplanCEP{Context: "default", Exten: "s", Priority: 1, AppName: "", AppData: ""}
	alive := func() bool { return s.channels[id] == ch }
	s.laterLocked(time.Millisecond, func() func() {
		if !alive() {
			return func() {}
		}
		waits := []func(){s.emitLocked(id, s.dial(ch, ""))}
		switch {
		case ep.Busy:
			c17, t486 := 17, 486
			waits = append(waits,
				s.emitLocked(id, &ari.ChannelHangupRequest{EventBase: s.base("ChannelHangupRequest"), Cause: &c17, TechCause: &t486, Channel: ch.snapshot(s.app)}),
				s.emitLocked(id, s.dial(ch, "BUSY")),
				s.emitLocked(id, &ari.ChannelDestroyed{EventBase: s.base("ChannelDestroyed"), Cause: 17, CauseTxt: "User busy", TechCause: &t486, Channel: ch.snapshot(s.app)}))
			delete(s.channels, id)
			return joinWaits(waits...)
		}
		ch.state = "Ringing"
		waits = append(waits,
			s.emitLocked(id, &ari.ChannelStateChange{EventBase: s.base("ChannelStateChange"), Channel: ch.snapshot(s.app)}),
			s.emitLocked(id, s.dial(ch, "RINGING")))
		if ep.NoAnswer || (timeout > 0 && ep.AnswerAfter >= time.Duration(timeout)*time.Second) {
			s.laterLocked(time.Duration(timeout)*time.Second, func() func() {
				if !alive() {
					return func() {}
				}
				t480 := 480
				delete(s.channels, id)
				return s.emitLocked(id, &ari.ChannelDestroyed{EventBase: s.base("ChannelDestroyed"), Cause: 19, CauseTxt: "User alerting, no answer", TechCause: &t480, Channel: ch.snapshot(s.app)})
			})
			return joinWaits(waits...)
		}
		s.laterLocked(ep.AnswerAfter, func() func() {
			if !alive() {
				return func() {}
			}
			ch.state = "Up"
			ch.inStasis = true
			ch.exten = "s"
			if ep.HangUpAfter > 0 {
				s.laterLocked(ep.HangUpAfter, func() func() {
					if !alive() {
						return func() {}
					}
					return s.hangupLocked(ch, nil, nil, false)
				})
			}
			return joinWaits(
				s.emitLocked(id, &ari.ChannelStateChange{EventBase: s.base("ChannelStateChange"), Channel: ch.snapshot(s.app)}),
				s.emitLocked(id, s.dial(ch, "ANSWER")),
				s.emitLocked(id, &ari.StasisStart{EventBase: s.base("StasisStart"), Args: ch.args, Channel: ch.snapshot(s.app)}))
		})
		return joinWaits(waits...)
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, reply)
}

// createBridge: POST /bridges replies 200 (not 201, as recorded).
func (s *Server) createBridge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if t := q.Get("type"); t != "" && t != "mixing" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "fake supports mixing bridges only"})
		return
	}
	s.mu.Lock()
	s.seq++
	id := q.Get("bridgeId")
	if id == "" {
		id = fmt.Sprintf("99c9deb8-0000-0000-0000-%012d", s.seq)
	}
	b := &bridge{id: id, name: q.Get("name"), created: time.Now()}
	s.bridges[id] = b
	reply := b.model()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, reply)
}

// addChannel: ChannelEnteredBridge for each channel before the 204.
func (s *Server) addChannel(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("channel"), ",")
	s.mu.Lock()
	b := s.bridges[r.PathValue("id")]
	if b == nil {
		s.mu.Unlock()
		notFound(w, "Bridge")
		return
	}
	var chans []*channel
	for _, id := range ids {
		ch := s.channels[id]
		if ch == nil {
			s.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Channel not found"})
			return
		}
		if !ch.inStasis {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Channel not in Stasis application"})
			return
		}
		chans = append(chans, ch)
	}
	var waits []func()
	for _, ch := range chans {
		if ch.bridge == b {
			continue
		}
		if ch.bridge != nil {
			waits = append(waits, s.leaveBridgeLocked(ch))
		}
		ch.bridge = b
		b.members = append(b.members, ch)
		b.used = true
		snap := ch.snapshot(s.app)
		waits = append(waits, s.emitLocked(ch.id, &ari.ChannelEnteredBridge{EventBase: s.base("ChannelEnteredBridge"), Bridge: b.model(), Channel: &snap}))
	}
	s.mu.Unlock()
	joinWaits(waits...)()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) leaveBridgeLocked(ch *channel) func() {
	b := ch.bridge
	ch.bridge = nil
	for i, m := range b.members {
		if m == ch {
			b.members = append(b.members[:i:i], b.members[i+1:]...)
			break
		}
	}
	return s.emitLocked(ch.id, &ari.ChannelLeftBridge{EventBase: s.base("ChannelLeftBridge"), Bridge: b.model(), Channel: ch.snapshot(s.app)})
}

// destroyBridge: DELETE /bridges/{id}. Channels still in it leave it (and
// go on in Stasis); BridgeDestroyed only if the app was subscribed to the
// bridge, i.e. a channel had been in it (transcript agent-no-answer).
func (s *Server) destroyBridge(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b := s.bridges[r.PathValue("id")]
	if b == nil {
		s.mu.Unlock()
		notFound(w, "Bridge")
		return
	}
	var waits []func()
	for len(b.members) > 0 {
		waits = append(waits, s.leaveBridgeLocked(b.members[0]))
	}
	if b.used {
		waits = append(waits, s.emitLocked("", &ari.BridgeDestroyed{EventBase: s.base("BridgeDestroyed"), Bridge: b.model()}))
	}
	delete(s.bridges, b.id)
	s.mu.Unlock()
	joinWaits(waits...)()
	w.WriteHeader(http.StatusNoContent)
}

// BridgedWith lists the other channels in the channel's bridge (ids).
func (c *Call) BridgedWith() []string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	ch := c.s.channels[c.id]
	if ch == nil || ch.bridge == nil {
		return nil
	}
	var ids []string
	for _, m := range ch.bridge.members {
		if m != ch {
			ids = append(ids, m.id)
		}
	}
	return ids
}

// Endpoint is the dial string an originated channel was created with.
func (c *Call) Endpoint() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil {
		return ch.endpoint
	}
	if c.ch != nil {
		return c.ch.endpoint
	}
	return ""
}

// CallerNumber is the channel's caller id number (for an originated
// channel, from the originate's callerId).
func (c *Call) CallerNumber() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil {
		return ch.caller
	}
	return ""
}

// Var is a channel variable ("" when unset or the channel is gone).
func (c *Call) Var(name string) string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil {
		return ch.vars[name]
	}
	return ""
}

// BridgeCount is the number of bridges that exist.
func (s *Server) BridgeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bridges)
}
