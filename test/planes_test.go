package test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/telemetry"
)

// Issue 7's shared scenario table: the same IVR scenarios, written once,
// run against both media planes through hotlined as a real process.
//
//   - sip: hotlined on its embedded SIP plane, the caller is callsim
//     (SIP + RTP on loopback; what it heard is recognised from the audio);
//   - ari: hotlined --plane ari against arifake, a fake Asterisk served from
//     this test process; the caller is driven through the fake (Press,
//     HangUp, DropConnections) and what it heard is the fake's record of
//     the playbacks started on its channel (sound:hotline/<lang>/<id> URIs
//     map back to prompt keys). The fake plays each prompt for the length
//     of its real audio file, so a scenario's timings mean the same on both
//     planes.
//
// After both planes ran a scenario, their cases are compared: one case
// per call (none for a refused call), with the same IVR path, outcome,
// appeal type, queue and destination.

// press is what the caller types.
type press struct {
	Digits string        // sent one after the other
	Mode   string        // sip: "rfc4733" (default) or "info"; ari: always ChannelDtmfReceived
	On     string        // anchor: the start of this prompt; "": the first prompt
	After  time.Duration // after the anchor
}

// wsDrop drops the fake's events WebSocket (ari only) After the start of
// prompt On, and refuses new connections For a while, so the events of
// that window are lost, as Asterisk loses them.
type wsDrop struct {
	On         string
	After, For time.Duration
}

// restartAt kills hotlined (SIGKILL) After the start of prompt On and
// starts a new one on the same data folder (ari only: on the sip plane the
// call dies with the process).
type restartAt struct {
	On    string
	After time.Duration
}

// party is a person the router connects the caller to. On the ari
// plane both moments are scaled by ariTimeScale, as the prompts are.
type party struct {
	AnswerAfter time.Duration // ringing before the answer
	Talk        time.Duration // from the answer to its hang-up
}

// scenario is one row of the table.
type scenario struct {
	name string
	// only names the one plane a plane-specific row runs on ("sip", "ari").
	only string
	// skip says why the row cannot run yet (both planes).
	skip string

	from, to string // caller number (distinct per row), dialled number (default 12345)
	press    *press
	// hangUpAfter: the caller hangs up this long after the answer; 0: it
	// waits for hotline to end the call (at most callCap).
	hangUpAfter time.Duration
	dropWS      *wsDrop
	restart     *restartAt
	// agent: agent 1001 (sip: a registered callsim agent; ari: the fake's
	// endpoint PJSIP/1001) answers and hangs up after a talk time.
	agent *party
	// line: the 12315 line (sip: a callsim line behind the destination's
	// trunk; ari: the fake's trunk endpoint for it) does the same.
	line *party

	want expect
	// Once hotlined routes calls (the routing issue wired in: see
	// routingWired), a queued or transferred caller no longer hears the
	// routing prompt and then the end of the call: the table's routing
	// file (testdata/planes-routing.yaml) makes every queue book a callback
	// after a second without an agent, and no destination has a trunk.
	// queued: the row ends in a queue (want, then the callback prompts);
	// routed, when set, replaces want.
	queued bool
	routed *expect
}

// thenCallback is e once routing is wired: after transferring-agent the
// queue gives up (no agent), books a callback and hotline ends the call.
func thenCallback(e expect) *expect {
	e.heard = append(slices.Clip(e.heard), "zh-CN/callback-booked", "zh-CN/goodbye")
	e.outcome, e.outcomeAnyOf = "", routedOutcomes
	return &e
}

// routedOutcomes: a queue that books a callback at its maximum wait ends
// the call without an agent; whether the case counts it as abandoned or
// as a callback requested is server/call.go's choice (outcomeOf). The
// planes are held to the same one by comparePlanes.
var routedOutcomes = []cases.Outcome{cases.OutcomeAbandoned, "callback_requested"}

// expected is the row's expectation for the hotlined under test.
func (sc scenario) expected() expect {
	switch {
	case !routingWired():
		return sc.want
	case sc.routed != nil:
		return *sc.routed
	case sc.queued:
		return *thenCallback(sc.want)
	}
	return sc.want
}

// expect is what the caller and the case store must show.
type expect struct {
	answered bool
	heard    []string // prompt keys heard in this order (others may come between)
	notHeard []string
	endedBy  string // "caller" or "hotline"
	// bridged: the caller talked with the row's agent or line (sip: the
	// far phone answered and received the caller's audio; ari: the fake
	// had both channels in one bridge).
	bridged bool
	// ringback: the caller heard the ringback tone while a line rang
	// (sip: 450 Hz frames received; ari: tone:ring;tonezone=cn played),
	// and, since it must stop at the answer, not while bridged.
	ringback bool
	cases    int // cases the call opened: 1, or 0 for a refused call
	// of the case, when cases == 1:
	path         []string // "node:digits" steps the IVR path has, in this order
	outcome      cases.Outcome
	outcomeAnyOf []cases.Outcome // instead of outcome, when set
	appeal       cases.AppealType
	queue        string
	destination  string
}

// callCap bounds a call in which the caller waits for hotline (the
// longest, queue-to-agent, ends after about 65 s on the sip plane).
const callCap = 90 * time.Second

// pathMenuDigit1 is the path of a caller who listens to the greeting and
// the language menu, then presses 1 in the main menu. Rows name the steps
// that make the scenario; the planes must agree on the whole path.
var pathMenuDigit1 = []string{"welcome:", "language:-", "main:1", "consult:", "queue-general:"}

// A key typed during the greeting stops it; the language node keeps the
// key for the main menu.
var (
	pathTypeAhead1 = []string{"welcome:", "language:1", "main:1", "consult:", "queue-general:"}
	pathTypeAhead4 = []string{"welcome:", "language:4", "main:4", "to-12315:"}
)

var scenarios = []scenario{
	{
		name:   "menu-digit-1",
		queued: true,
		from:   "13800138101",
		// RFC 4733 on sip; ChannelDtmfReceived on ari.
		press: &press{Digits: "1", On: "zh-CN/main-menu", After: 1500 * time.Millisecond},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/emergency-notice", "zh-CN/language-menu", "zh-CN/main-menu", "zh-CN/transferring-agent"},
			// Until agents take calls (routing in hotlined), the flow
			// ends the call after "transferring you to an agent".
			endedBy: "hotline", cases: 1,
			path:    pathMenuDigit1,
			outcome: cases.OutcomeAbandoned, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		// SIP INFO (application/dtmf-relay) is a sip-plane matter: behind
		// Asterisk it arrives as the same ChannelDtmfReceived. Typed ahead
		// (the INFO digit must barge in too) to keep the row short; INFO in
		// the main menu is test/call_test.go TestMenuDigitSIPInfo.
		name:   "type-ahead-sip-info",
		queued: true,
		only:   "sip",
		from:   "13800138102",
		press:  &press{Digits: "1", Mode: "info", After: 2 * time.Second},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/transferring-agent"},
			notHeard: []string{"zh-CN/emergency-notice", "zh-CN/main-menu"},
			endedBy:  "hotline", cases: 1,
			path:    pathTypeAhead1,
			outcome: cases.OutcomeAbandoned, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		name:   "type-ahead-skips-menu",
		queued: true,
		from:   "13800138103",
		// 1 during the greeting: barge-in, and the key goes to the main menu.
		press: &press{Digits: "1", After: 2 * time.Second},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/transferring-agent"},
			notHeard: []string{"zh-CN/emergency-notice", "zh-CN/main-menu"},
			endedBy:  "hotline", cases: 1,
			path:    pathTypeAhead1,
			outcome: cases.OutcomeAbandoned, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		name: "type-ahead-transfer-decision-12315",
		from: "13800138104",
		// 4 (market supervision, 12315) during the greeting. Without a
		// router in hotlined the flow says "transferring you to 12315" and
		// ends the call; the case records the transfer decision.
		press: &press{Digits: "4", After: 2 * time.Second},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/transferring-12315"},
			notHeard: []string{"zh-CN/main-menu", "zh-CN/transferring-agent"},
			endedBy:  "hotline", cases: 1,
			path:    pathTypeAhead4,
			outcome: cases.OutcomeTransferred, destination: "12315",
		},
		// Routed: 12315 has no trunk here, so the transfer fails over to
		// the flow's on_fail (market-fallback, "line unavailable", the
		// general queue), which
		// books a callback; the case keeps the transfer decision too.
		routed: &expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/transferring-12315", "zh-CN/line-unavailable", "zh-CN/transferring-agent", "zh-CN/callback-booked", "zh-CN/goodbye"},
			notHeard: []string{"zh-CN/main-menu"},
			endedBy:  "hotline", cases: 1,
			path:         append(slices.Clip(pathTypeAhead4), "market-fallback:", "line-unavailable:", "queue-general:"),
			outcomeAnyOf: routedOutcomes, queue: "general", destination: "12315",
		},
	},
	{
		name:        "caller-hangs-up-in-greeting",
		from:        "13800138105",
		hangUpAfter: 3 * time.Second,
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting"},
			notHeard: []string{"zh-CN/emergency-notice"},
			endedBy:  "caller", cases: 1,
			path:    []string{"welcome:"},
			outcome: cases.OutcomeAbandoned,
		},
	},
	{
		// sip: 404 to the INVITE; ari: the dialplan would not send 12346
		// to Stasis(hotline), but if it did, hotline hangs the channel up
		// unanswered.
		name:        "unknown-number-refused",
		from:        "13800138106",
		to:          "12346",
		hangUpAfter: 2 * time.Second,
		want:        expect{answered: false, endedBy: "hotline", cases: 0},
	},
	{
		name:   "websocket-dropped-mid-call",
		queued: true,
		only:   "ari",
		from:   "13800138107",
		// The socket drops during the emergency notice and stays down past
		// its end: its PlaybackFinished is lost; hotline reconnects,
		// resynchronises (the call is still live in the application, the
		// playback gone) and the flow goes on to the menu.
		dropWS: &wsDrop{On: "zh-CN/emergency-notice", After: 3 * time.Second, For: 3 * time.Second},
		press:  &press{Digits: "1", On: "zh-CN/main-menu", After: 1500 * time.Millisecond},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/emergency-notice", "zh-CN/main-menu", "zh-CN/transferring-agent"},
			endedBy:  "hotline", cases: 1,
			path:    pathMenuDigit1,
			outcome: cases.OutcomeAbandoned, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		name:   "hotlined-restart-adopts-call",
		queued: true,
		only:   "ari",
		from:   "13800138108",
		// hotlined dies during the greeting; the channel stays in Stasis
		// (Asterisk keeps it, the old playback runs on). The new hotlined
		// lists the application's channels, adopts the call and runs the
		// flow from the start, on the same case (one case per call id).
		restart: &restartAt{On: "zh-CN/greeting", After: 2 * time.Second},
		press:   &press{Digits: "1", On: "zh-CN/main-menu", After: 1500 * time.Millisecond},
		want: expect{
			answered: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/greeting", "zh-CN/main-menu", "zh-CN/transferring-agent"},
			endedBy:  "hotline", cases: 1,
			path:    pathMenuDigit1,
			outcome: cases.OutcomeAbandoned, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		// 1 typed ahead: consultation, the general queue. Agent 1001
		// answers; the caller hears the agent's number (工号), talks, and
		// when the agent hangs up is back in the flow: the case number,
		// then the survey, which nobody answers (asked twice), goodbye.
		name:  "queue-to-agent",
		from:  "13800138109",
		press: &press{Digits: "1", After: 2 * time.Second},
		agent: &party{AnswerAfter: time.Second, Talk: 10 * time.Second},
		want: expect{
			answered: true, bridged: true,
			heard: []string{"zh-CN/greeting", "zh-CN/transferring-agent", "zh-CN/agent-number-is",
				"zh-CN/digit-1", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-1", "zh-CN/your-case-number-is", "zh-CN/survey", "zh-CN/survey", "zh-CN/goodbye"},
			notHeard: []string{"zh-CN/callback-booked"},
			endedBy:  "hotline", cases: 1,
			path:    pathTypeAhead1,
			outcome: cases.OutcomeAnsweredByAgent, appeal: cases.AppealConsultation, queue: "general",
		},
	},
	{
		// 4 typed ahead: market supervision, 12315 through its trunk. The
		// line answers and talks; the caller's number is not passed.
		name:  "external-transfer-completes",
		from:  "13800138110",
		press: &press{Digits: "4", After: 2 * time.Second},
		line:  &party{AnswerAfter: time.Second, Talk: 4 * time.Second},
		want: expect{
			answered: true, bridged: true, ringback: true,
			heard:    []string{"zh-CN/greeting", "zh-CN/transferring-12315"},
			notHeard: []string{"zh-CN/main-menu", "zh-CN/transferring-agent"},
			endedBy:  "hotline", cases: 1,
			path:    pathTypeAhead4,
			outcome: cases.OutcomeTransferred, destination: "12315",
		},
	},
}

// TestPlaneScenarios runs every row on each plane it applies to, in
// parallel, then compares the planes' cases. It is not itself parallel so
// that, once its rows are done, nothing else runs in this process and the
// goroutine check covers the fakes and drivers of the whole table.
func TestPlaneScenarios(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// The group returns when all its parallel rows are done.
	t.Run("rows", func(t *testing.T) { runRows(t) })
	// Everything the table started in this process (fake Asterisks, their
	// WebSockets, callsim and hotlined watchers, API clients) has ended.
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}

func runRows(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.skip != "" {
				t.Skip(sc.skip)
			}
			t.Parallel()
			got := map[string]*observed{}
			// The group returns when both planes are done.
			t.Run("planes", func(t *testing.T) {
				for _, pl := range []string{"sip", "ari"} {
					if sc.only != "" && sc.only != pl {
						continue
					}
					o := &observed{}
					got[pl] = o
					t.Run(pl, func(t *testing.T) {
						t.Parallel()
						*o = drivers[pl](t, sc)
						checkObserved(t, pl, sc, o)
					})
				}
			})
			if sip, ari := got["sip"], got["ari"]; sip != nil && ari != nil && sip.ok && ari.ok {
				comparePlanes(t, sip, ari)
			}
		})
	}
}

// observed is what a driver saw of one call.
type observed struct {
	ok       bool // the driver ran the call to its end
	answered bool
	heard    []string
	endedBy  string
	bridged  bool
	ringback bool
	cases    []caseSeen
}

// caseSeen is the part of a case the planes must agree on.
type caseSeen struct {
	Number, Plane, Dialled, Caller string
	Path                           []string
	Outcome                        cases.Outcome
	Appeal                         cases.AppealType
	Queue, Destination             string
}

func checkObserved(t *testing.T, pl string, sc scenario, o *observed) {
	t.Helper()
	w := sc.expected()
	if o.answered != w.answered {
		t.Errorf("answered %v, want %v", o.answered, w.answered)
	}
	if !heardInOrder(o.heard, w.heard) {
		t.Errorf("heard %v; want in this order %v", o.heard, w.heard)
	}
	for _, k := range w.notHeard {
		if slices.Contains(o.heard, k) {
			t.Errorf("heard %s; want it skipped: %v", k, o.heard)
		}
	}
	if !w.answered && len(o.heard) > 0 {
		t.Errorf("an unanswered call heard %v", o.heard)
	}
	if o.endedBy != w.endedBy {
		t.Errorf("ended by %q, want %q", o.endedBy, w.endedBy)
	}
	if o.bridged != w.bridged {
		t.Errorf("caller bridged with the far party: %v, want %v", o.bridged, w.bridged)
	}
	if o.ringback != w.ringback {
		t.Errorf("caller heard the ringback tone: %v, want %v", o.ringback, w.ringback)
	}
	if len(o.cases) != w.cases {
		t.Fatalf("%d cases after the call, want %d: %+v", len(o.cases), w.cases, o.cases)
	}
	if w.cases == 0 {
		return
	}
	c := o.cases[0]
	if c.Plane != pl || c.Dialled != "12345" || c.Caller != telemetry.MaskNumber(sc.from) {
		t.Errorf("case plane %q dialled %q caller %q; want %s, 12345, the masked caller", c.Plane, c.Dialled, c.Caller, pl)
	}
	if !heardInOrder(c.Path, w.path) {
		t.Errorf("case path %v; want these steps in this order: %v", c.Path, w.path)
	}
	if w.outcomeAnyOf != nil {
		if !slices.Contains(w.outcomeAnyOf, c.Outcome) {
			t.Errorf("case outcome %q, want one of %q", c.Outcome, w.outcomeAnyOf)
		}
	} else if c.Outcome != w.outcome {
		t.Errorf("case outcome %q, want %q", c.Outcome, w.outcome)
	}
	if c.Appeal != w.appeal || c.Queue != w.queue || c.Destination != w.destination {
		t.Errorf("case appeal %q queue %q destination %q; want %q %q %q",
			c.Appeal, c.Queue, c.Destination, w.appeal, w.queue, w.destination)
	}
}

// comparePlanes: the same scenario leaves the same case on both planes.
func comparePlanes(t *testing.T, sip, ari *observed) {
	t.Helper()
	if len(sip.cases) != len(ari.cases) {
		t.Fatalf("sip wrote %d cases, ari %d", len(sip.cases), len(ari.cases))
	}
	for i := range sip.cases {
		s, a := sip.cases[i], ari.cases[i]
		if !slices.Equal(s.Path, a.Path) {
			t.Errorf("case paths differ: sip %v, ari %v", s.Path, a.Path)
		}
		if s.Outcome != a.Outcome || s.Appeal != a.Appeal || s.Queue != a.Queue || s.Destination != a.Destination || s.Dialled != a.Dialled || s.Caller != a.Caller {
			t.Errorf("cases differ: sip %+v, ari %+v", s, a)
		}
	}
	// The flow's prompts (without the case number's digits, which differ)
	// came in the same order on both planes.
	if sp, ap := flowPrompts(sip.heard), flowPrompts(ari.heard); !slices.Equal(sp, ap) {
		t.Errorf("prompt sequences differ: sip heard %v, ari played %v", sp, ap)
	}
}

// flowPrompts drops the digit prompts of numbers read out.
func flowPrompts(heard []string) []string {
	var out []string
	for _, k := range heard {
		if _, id, _ := strings.Cut(k, "/"); strings.HasPrefix(id, "digit-") {
			continue
		}
		out = append(out, k)
	}
	return out
}

// heardInOrder reports whether want is a subsequence of heard.
func heardInOrder(heard, want []string) bool {
	i := 0
	for _, h := range heard {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}
