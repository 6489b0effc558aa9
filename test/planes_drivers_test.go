package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ari/arifake"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/prompts"
)

// A driver runs one scenario on one plane: it starts hotlined, places the
// call, acts as the caller, and reports what the caller saw and which
// cases the call left.
type driver func(t *testing.T, sc scenario) observed

var drivers = map[string]driver{"sip": runSIP, "ari": runARI}

// runSIP: hotlined on the embedded SIP plane, callsim as the caller.
func runSIP(t *testing.T, sc scenario) observed {
	if sc.dropWS != nil {
		t.Fatal("a WebSocket drop is an ari row")
	}
	rargs, linePort := rowRouting(t, sc)
	s := startServer(t, "", rargs...)
	keepLogs(t, s)
	var far *phoneProc
	if p := sc.agent; p != nil {
		s.addAgents(t, "1001")
		far = agentPhone(t, s, "1001", "--answer-after", p.AnswerAfter.String(), "--talk", p.Talk.String(), "--calls", "1")
		// Registration (a phone not yet registered is retried by the
		// router after 2 s anyway).
		time.Sleep(1500 * time.Millisecond)
	}
	if p := sc.line; p != nil {
		far = startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
			"--answer-after", p.AnswerAfter.String(), "--talk", p.Talk.String(), "--calls", "1", "--json")
		time.Sleep(300 * time.Millisecond)
	}
	args := []string{"--from", sc.from, "--to", dialled(sc), "--detect-tone", "450"}
	if p := sc.press; p != nil {
		mode := p.Mode
		if mode == "" {
			mode = "rfc4733"
		}
		args = append(args, "--dtmf", p.Digits, "--dtmf-mode", mode, "--dtmf-after", p.After.String())
		if p.On != "" {
			args = append(args, "--dtmf-on", p.On)
		}
	}
	hang := sc.hangUpAfter
	if hang == 0 {
		hang = callCap
	}
	args = append(args, "--hangup-after", hang.String())
	r := s.call(t, args...)
	// One ringback cadence opens with 50 frames of 450 Hz in a row; a line
	// that rings 1 s lets most of them through. Speech puts energy at
	// 450 Hz now and then, never for long; the hold music's A4 (440 Hz)
	// counts too, for one note (25 frames).
	o := observed{answered: r.Answered, heard: withoutTones(r.PromptsHeard), ringback: r.TonesLongestRun["450"] >= 40}
	t.Logf("sip: caller received %d frames of 450 Hz, %d in a row at most", r.TonesReceived["450"], r.TonesLongestRun["450"])
	switch {
	case r.EndedBy == "local":
		o.endedBy = "caller"
	case r.EndedBy == "remote" || !r.Answered && r.SIPStatus >= 400:
		// A BYE from hotline, or a final error response to the INVITE.
		o.endedBy = "hotline"
	default:
		o.endedBy = r.EndedBy
	}
	if !r.Answered {
		t.Logf("sip: final response %d %s", r.SIPStatus, r.SIPReason)
	}
	if far != nil {
		// The far phone answered and the caller's audio reached it through
		// hotline's relay.
		for _, rep := range far.reports(t) {
			t.Logf("sip: far phone: answered %v rtp_received %v", rep["answered"], rep["rtp_received"])
			o.bridged = o.bridged || rep["answered"] == true && num(rep, "rtp_received") >= 50
		}
	}
	o.cases = casesOf(t, s, sc.expected().cases)
	o.ok = true
	return o
}

// runARI: hotlined --plane ari against a fake Asterisk in this process;
// the caller is driven through the fake.
func runARI(t *testing.T, sc scenario) observed {
	fake := arifake.New("hotline", "hotline", "secret")
	fake.MediaDuration = func(uri string) time.Duration { return ariTime(promptDuration(uri)) }
	// A tone: URI is Asterisk's own (indications.conf), never a file.
	fake.Missing = func(uri string) bool { return !strings.HasPrefix(uri, "tone:") && promptDuration(uri) == 0 }
	// Registered first, so it runs after hotlined has stopped.
	t.Cleanup(fake.Close)
	rargs, linePort := rowRouting(t, sc)
	args := append([]string{"--plane", "ari", "--ari-url", fake.URL(),
		"--ari-user", "hotline", "--ari-password", "secret", "--ari-app", "hotline"}, rargs...)
	s := startServer(t, "", args...)
	keepLogs(t, s)
	// The far parties are Asterisk endpoints: the agent's PJSIP endpoint
	// (--ari-agent-endpoint PJSIP/{ext}) and the 12315 trunk URI dialled
	// through the trunk endpoint (--ari-trunk-endpoint trunk).
	if p := sc.agent; p != nil {
		s.addAgents(t, "1001")
		fake.SetEndpoint("PJSIP/1001", arifake.Endpoint{AnswerAfter: ariTime(p.AnswerAfter), HangUpAfter: ariTime(p.Talk)})
	}
	if p := sc.line; p != nil {
		fake.SetEndpoint(fmt.Sprintf("PJSIP/trunk/sip:12315@127.0.0.1:%d", linePort),
			arifake.Endpoint{AnswerAfter: ariTime(p.AnswerAfter), HangUpAfter: ariTime(p.Talk)})
	}
	waitWS := func(n int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := fake.WaitConnections(ctx, n); err != nil {
			t.Fatalf("hotlined never opened the events WebSocket: %v\n%s", err, s.Log())
		}
	}
	waitWS(1)

	call := fake.Call(arifake.CallOptions{Caller: sc.from, Exten: dialled(sc)})
	c := &ariCaller{t: t, fake: fake, call: call, start: time.Now(), started: map[string]time.Time{}}
	// A crash of hotlined mid-call: a new one on the same data folder
	// finds the channel still in Stasis(hotline) and adopts it.
	c.restart = func() {
		s.Kill()
		n := fake.Connections()
		s = startServer(t, s.DataDir, args...)
		keepLogs(t, s)
		waitWS(n + 1)
	}
	c.run(sc)

	o := observed{answered: c.answered, heard: c.heard(), endedBy: c.endedBy, bridged: c.bridged, ringback: c.ringback}
	o.cases = casesOf(t, s, sc.expected().cases)
	checkNoCallGoroutines(t, s)
	o.ok = true
	return o
}

// perCallFrames name the functions only a live call's goroutines run in
// hotlined on the ari plane (ari/plane.go startCall: the call's event pump
// and its handler).
var perCallFrames = []string{
	"ari.(*call).pump",
	"ari.(*streamHandler).serve",
	"server.(*callHandler).ServeCall",
}

// checkNoCallGoroutines: once the call is over, hotlined runs none of its
// goroutines, WebSocket drop or not. The dump ends hotlined (the row is
// over by then).
func checkNoCallGoroutines(t *testing.T, s *server) {
	t.Helper()
	s.waitNoCalls(t)
	// The handler returns just after the plane forgets the call.
	time.Sleep(300 * time.Millisecond)
	stream := false
	for _, g := range s.goroutineDump(t) {
		stream = stream || strings.Contains(g, "ari.(*Client).RunStream")
		for _, f := range perCallFrames {
			if strings.Contains(g, f) {
				t.Errorf("hotlined still runs a goroutine of the ended call:\n%s", g)
				break
			}
		}
	}
	if !stream {
		t.Errorf("the goroutine dump has no ari stream goroutine: the leak check would prove nothing")
	}
}

// ariTimeScale speeds the ari rows up: the fake plays each prompt for this
// fraction of its real length, and the scenario's moments (a key so long
// after a prompt started, a hang-up so long after the answer, the socket
// drop) are scaled alike, so every action lands in the same prompt as on
// the sip plane, where the audio plays in real time. What is not scaled:
// the flow's own timeouts (language menu 2 s, menus 5 s) and hotline's
// reconnect backoff, which only make the ari call relatively longer.
const ariTimeScale = 0.25

func ariTime(d time.Duration) time.Duration { return time.Duration(float64(d) * ariTimeScale) }

// ariCaller plays the caller on the fake: it watches the channel (state,
// playbacks started) every few milliseconds and acts when a scenario's
// moment comes.
type ariCaller struct {
	t       *testing.T
	fake    *arifake.Server
	call    *arifake.Call
	start   time.Time
	started map[string]time.Time // prompt key -> first start seen

	answered   bool
	answeredAt time.Time
	endedBy    string
	bridged    bool // seen in a bridge with another channel
	ringback   bool // tone:ring played to the caller, never while bridged
	toneBridge bool // a tone: playback seen while the caller was bridged

	restart func() // kill hotlined and start a new one
}

func (c *ariCaller) heard() []string {
	var out []string
	for _, u := range c.call.Played() {
		if strings.HasPrefix(u, "tone:") {
			// Asterisk's own tone (the ringback): no prompt
			// (expect.ringback checks it).
			continue
		}
		out = append(out, strings.TrimPrefix(u, "sound:hotline/"))
	}
	return withoutTones(out)
}

// withoutTones drops the synthesised audio (hold music: "tone/…") from a
// list of prompts heard: how often it loops depends on timing, which the
// planes do not share.
func withoutTones(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !strings.HasPrefix(k, "tone/") {
			out = append(out, k)
		}
	}
	return out
}

// toneLib is the prompt library, for the length of synthesised audio.
var toneLib = sync.OnceValue(func() *prompts.Library {
	lib, err := prompts.Load(prompts.Embedded())
	if err != nil {
		panic(err)
	}
	return lib
})

// poll updates what the caller knows; it reports false once the channel
// is gone.
func (c *ariCaller) poll() bool {
	now := time.Now()
	for _, k := range c.heard() {
		if _, ok := c.started[k]; !ok {
			c.started[k] = now
		}
	}
	if !c.answered && c.call.State() == "Up" {
		c.answered, c.answeredAt = true, now
	}
	if len(c.call.BridgedWith()) > 0 {
		c.bridged = true
		if strings.HasPrefix(c.call.Playing(), "tone:") {
			c.toneBridge = true
		}
	}
	c.ringback = slices.Contains(c.call.Played(), "tone:ring;tonezone=cn") && !c.toneBridge
	return !c.call.Gone()
}

// anchor is when prompt key started ("": the first prompt), if it did.
func (c *ariCaller) anchor(key string) (time.Time, bool) {
	if key == "" {
		h := c.heard()
		if len(h) == 0 {
			return time.Time{}, false
		}
		key = h[0]
	}
	at, ok := c.started[key]
	return at, ok
}

func (c *ariCaller) run(sc scenario) {
	t := c.t
	digits := ""
	var nextDigit time.Time
	if sc.press != nil {
		digits = sc.press.Digits
	}
	dropState := 0 // 0 pending, 1 dropped, 2 restored
	restarted := false
	var restoreAt time.Time
	deadline := c.start.Add(callCap + 10*time.Second)
	for c.poll() {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("call still up after %v; heard %v", callCap, c.heard())
		}
		// The caller's hang-up, counted from the answer (the cap when the
		// caller waits for hotline).
		hang := ariTime(sc.hangUpAfter)
		if hang == 0 {
			hang = callCap
		}
		if c.answered && now.Sub(c.answeredAt) >= hang {
			c.call.HangUp()
			c.endedBy = "caller"
			break
		}
		if d := sc.dropWS; d != nil {
			if at, ok := c.anchor(d.On); ok && dropState == 0 && now.Sub(at) >= ariTime(d.After) {
				// Refuse first, so hotline's first reconnect attempts fail.
				c.fake.Refuse(true)
				c.fake.DropConnections()
				dropState, restoreAt = 1, now.Add(ariTime(d.For))
				t.Logf("ari: WebSocket dropped %v into %s", ariTime(d.After), d.On)
			}
			if dropState == 1 && now.After(restoreAt) {
				c.fake.Refuse(false)
				dropState = 2
				t.Logf("ari: WebSocket accepted again")
			}
		}
		if r := sc.restart; r != nil && !restarted {
			if at, ok := c.anchor(r.On); ok && now.Sub(at) >= ariTime(r.After) {
				t.Logf("ari: hotlined killed %v into %s", ariTime(r.After), r.On)
				c.restart()
				restarted = true
				t.Logf("ari: a new hotlined is connected")
			}
		}
		if digits != "" {
			if nextDigit.IsZero() {
				if at, ok := c.anchor(sc.press.On); ok {
					nextDigit = at.Add(ariTime(sc.press.After))
				}
			}
			// A digit is pressed only while the WebSocket is up: pressed
			// during a gap it would be lost, a different scenario.
			if !nextDigit.IsZero() && now.After(nextDigit) && dropState != 1 {
				c.call.Press(digits[0])
				digits = digits[1:]
				// Later digits follow the first as callsim sends them.
				nextDigit = now.Add(ariTime(sc.press.After))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.endedBy == "" {
		c.endedBy = c.remoteEnd()
	}
	if d := sc.dropWS; d != nil {
		c.checkResync(d)
	}
}

// remoteEnd tells how the channel went without the caller hanging up: a
// DELETE /channels/{id} from hotline, or (shutdown) a continue.
// The fake records a request once it has answered it, just after the
// channel is gone: wait for the record.
func (c *ariCaller) remoteEnd() string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, r := range c.fake.Requests() {
			if r.Path == "/ari/channels/"+c.call.ID() && r.Method == "DELETE" && r.Status == 204 {
				return "hotline"
			}
			if r.Path == "/ari/channels/"+c.call.ID()+"/continue" && r.Status == 204 {
				return "continued in dialplan"
			}
		}
		if time.Now().After(deadline) {
			return "unknown"
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkResync: the drop really cost events, and hotline reconnected and
// asked Asterisk for the state it missed.
func (c *ariCaller) checkResync(d *wsDrop) {
	t := c.t
	if n := c.fake.Connections(); n < 2 {
		t.Errorf("%d WebSocket connections; hotline should have reconnected", n)
	}
	lost := 0
	for _, e := range c.fake.Emitted() {
		if e.Channel == c.call.ID() && !e.Delivered {
			lost++
			t.Logf("ari: event lost in the gap: %s", e.Type)
		}
	}
	if lost == 0 {
		t.Errorf("no event of the call was lost while the WebSocket was down: the row proves nothing about resync")
	}
	resync := 0
	for _, r := range c.fake.Requests() {
		if r.Method == "GET" && (r.Path == "/ari/applications/hotline" || r.Path == "/ari/channels") {
			resync++
		}
	}
	if resync < 4 {
		t.Errorf("%d resync requests (application, channels); want them after each of 2 connections", resync)
	}
}

// promptDuration is how long a sound:hotline/<lang>/<id> URI plays: the
// length of our audio file (8 kHz A-law, one byte a sample), or 0 when
// there is none.
func promptDuration(uri string) time.Duration {
	key, ok := strings.CutPrefix(uri, "sound:hotline/")
	if !ok {
		return 0
	}
	if strings.HasPrefix(key, "tone/") {
		// Synthesised (ari/internal/sounds installs it as a file).
		frames, _ := toneLib().Frames(key, prompts.PCMA)
		return time.Duration(len(frames)) * 20 * time.Millisecond
	}
	fi, err := os.Stat(filepath.Join("..", "prompts", "audio", key+".alaw.wav"))
	if err != nil {
		return 0
	}
	const header = 44
	return time.Duration(fi.Size()-header) * time.Second / 8000
}

// routingWired reports whether the hotlined under test routes calls (the
// routing issue landed in server/run.go): its --help lists
// --routing-config. Rows then expect sc.routed.
var routingWired = sync.OnceValue(func() bool {
	out, err := exec.Command(filepath.Join(bin, "hotlined"), "--help").CombinedOutput()
	if err != nil && len(out) == 0 {
		panic(fmt.Sprintf("hotlined --help: %v", err))
	}
	return bytes.Contains(out, []byte("--routing-config"))
})

// rowRouting points hotlined at the table's routing file, or, for a row
// with an agent or a line, at one written for it: the general queue waits
// for the agent, and 12315's trunk is sip:127.0.0.1:<linePort>.
func rowRouting(t *testing.T, sc scenario) (args []string, linePort int) {
	if !routingWired() {
		return nil, 0
	}
	if sc.agent == nil && sc.line == nil {
		return []string{"--routing-config", filepath.Join("testdata", "planes-routing.yaml")}, 0
	}
	linePort = freePort(t)
	f := routingWithLine(t, linePort, `queues:
  - {id: general, max_wait: 30s, overflow: callback, announce_first: 1m, ring_timeout: 10s, wrap_up: 1s}
  - {id: complaints, max_wait: 1s, overflow: callback, announce_first: 1m}
  - {id: suggestions, max_wait: 1s, overflow: callback, announce_first: 1m}
  - {id: followup, max_wait: 1s, overflow: callback, announce_first: 1m}
`)
	return []string{"--routing-config", f}, linePort
}

func dialled(sc scenario) string {
	if sc.to == "" {
		return "12345"
	}
	return sc.to
}

// casesOf waits for the call's cases to be written (want of them, each
// ended), then reads each with its path. With want 0 it gives a late
// write a moment to show up.
func casesOf(t *testing.T, s *server, want int) []caseSeen {
	t.Helper()
	cl := s.adminClient(t)
	var l []*cases.Case
	deadline := time.Now().Add(20 * time.Second)
	if want == 0 {
		deadline = time.Now().Add(time.Second)
	}
	for {
		l = allCases(t, cl)
		done := len(l) >= want && want > 0
		for _, c := range l {
			done = done && !c.Ended.IsZero()
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out []caseSeen
	for _, c := range l {
		id := c.Number
		if id == "" {
			id = c.ID
		}
		v, err := cl.Case(context.Background(), id, nil, "")
		if err != nil {
			t.Fatalf("case %s: %v", id, err)
		}
		seen := caseSeen{Number: v.Number, Plane: v.Plane, Dialled: v.Dialled, Caller: v.CallerMasked,
			Outcome: v.Outcome, Appeal: v.AppealType, Queue: v.Queue, Destination: v.Destination}
		for _, p := range v.Path {
			seen.Path = append(seen.Path, fmt.Sprintf("%s:%s", p.Node, p.Digits))
		}
		t.Logf("case %s: plane %s path %v outcome %s appeal %q queue %q destination %q",
			seen.Number, seen.Plane, seen.Path, seen.Outcome, seen.Appeal, seen.Queue, seen.Destination)
		out = append(out, seen)
	}
	return out
}
