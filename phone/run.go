package phone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/telemetry"
)

// Script is what a caller does once answered.
type Script struct {
	// Digits are sent in order: the first DTMFAfter after the anchor, each
	// next one DTMFAfter after the previous. The anchor is the start of the
	// first prompt heard (or the start of prompt DTMFAnchor when set); when
	// no prompt has started, the answer.
	Digits    []byte
	DTMFMode  string        // rfc4733 (default) or info
	DTMFAfter time.Duration // default 3 s
	// DTMFGap, when set, is the delay between digits after the first
	// (agents key codes such as *7 in quick succession).
	DTMFGap      time.Duration
	DTMFDuration time.Duration // default 160 ms
	DTMFAnchor   string        // prompt key, e.g. "zh-CN/main-menu"
	// HangupAfter sends BYE this long after the answer (0: wait for the
	// far end's BYE or the context).
	HangupAfter time.Duration
	// HoldAfter, when set, puts the far end on hold (re-INVITE, sendonly)
	// this long after the answer, and HoldFor later takes it off hold
	// (re-INVITE, sendrecv; HoldFor 0: stays on hold).
	HoldAfter, HoldFor time.Duration
	// ReferTo, when set, is sent as a blind transfer (REFER with this
	// Refer-To, e.g. "sip:12315@hotline") ReferAfter after the answer;
	// the final status is in the report (refer_status).
	ReferTo    string
	ReferAfter time.Duration
	// OnAnswered, when set, is called once the call is answered.
	OnAnswered func()
	// Play lists prompt keys played to the far end once answered, before
	// Send starts (so that the far end, or a callsim on the other side of a
	// bridge, can recognise them).
	Play []string
	// Send is the frame looped to the far end for the whole call (default
	// silence in the negotiated codec).
	Send func(prompts.Codec) []byte
	// DetectTones lists frequencies (Hz, multiples of 50) to watch for in
	// the received audio: the report counts, per frequency, the frames that
	// carried it (tones_received), so that a party of a bridge or a
	// three-party call can tell whose tones reach it.
	DetectTones []float64
}

// linger is how long a call keeps its RTP session after the BYE, so that
// packets the far end sent before it saw the BYE are still counted as this
// call's and never reach another one.
const linger = 60 * time.Millisecond

// Report is the outcome of one call: the JSON object `callsim call` prints.
type Report struct {
	SIPStatus     int         `json:"sip_status"`
	SIPReason     string      `json:"sip_reason"`
	Answered      bool        `json:"answered"`
	Codec         string      `json:"codec"`
	From          string      `json:"from"` // masked
	To            string      `json:"to"`
	Transport     string      `json:"transport"`
	SetupMS       float64     `json:"setup_ms"`
	PromptsHeard  []string    `json:"prompts_heard"`
	PromptsDetail []PromptRun `json:"prompts_detail"`
	RTPReceived   uint64      `json:"rtp_received"`
	RTPLost       uint64      `json:"rtp_lost"`
	RTPSent       uint64      `json:"rtp_sent"`
	DTMFReceived  uint64      `json:"dtmf_received"`
	// TonesReceived: per watched frequency in Hz (Script.DetectTones), the
	// received 20 ms frames that carried it; absent when none is watched.
	TonesReceived map[string]uint64 `json:"tones_received,omitempty"`
	// TonesLongestRun: per watched frequency, the longest run of
	// consecutive frames that carried it (a held tone such as a ringback
	// cadence, told from speech that touches the frequency now and then).
	TonesLongestRun map[string]uint64 `json:"tones_longest_run,omitempty"`
	Interarrival    Summary           `json:"interarrival_ms"`
	DTMFSent        DTMFReport        `json:"dtmf_sent"`
	// DTMFToNextPromptMS: from sending the first digit (the first RFC 4733
	// packet, or the INFO request) to the first received packet of the next
	// prompt; null when no digit was sent or no prompt followed.
	DTMFToNextPromptMS *float64 `json:"dtmf_to_next_prompt_ms"`
	// Reinvites are the re-INVITEs we sent (hold, unhold).
	Reinvites []ReinviteResult `json:"reinvites"`
	// ReferStatus is the final response to our REFER (0: none sent).
	ReferStatus int    `json:"refer_status,omitempty"`
	EndedBy     string `json:"ended_by"`
	DurationMS  int64  `json:"duration_ms"`
	Error       string `json:"error,omitempty"`

	iat        *Histogram
	answeredAt time.Time
}

// DTMFReport lists the digits sent.
type DTMFReport struct {
	Digits string     `json:"digits"`
	Mode   string     `json:"mode"`
	Events []DTMFSent `json:"events"`
}

// Run places a call, runs the script and returns its report. It never
// fails: errors are in the report.
func (p *Phone) Run(ctx context.Context, o DialOptions, s Script) Report {
	s = s.withDefaults()
	start := time.Now()
	c, err := p.Dial(ctx, o)
	if err == nil {
		if s.OnAnswered != nil {
			s.OnAnswered()
		}
		err = c.script(ctx, s)
	}
	if c.sess != nil && !c.AnsweredAt.IsZero() {
		time.Sleep(linger)
	}
	r := c.report(s, start)
	if err != nil && r.Error == "" {
		r.Error = telemetry.Scrub(err.Error())
	}
	c.Close()
	return r
}

func (s Script) withDefaults() Script {
	if s.DTMFAfter <= 0 {
		s.DTMFAfter = 3 * time.Second
	}
	if s.DTMFDuration <= 0 {
		s.DTMFDuration = 160 * time.Millisecond
	}
	if s.DTMFMode == "" {
		s.DTMFMode = DTMFRFC4733
	}
	return s
}

func (c *Call) script(ctx context.Context, s Script) error {
	if len(s.DetectTones) > 0 {
		c.tones.Store(NewToneDetector(c.Codec, s.DetectTones))
	}
	frame := SilenceFrame(c.Codec)
	if s.Send != nil {
		frame = s.Send(c.Codec)
	}
	var played chan bool
	if lib := c.p.cfg.Prompts; len(s.Play) > 0 && lib != nil {
		var frames [][]byte
		for _, key := range s.Play {
			f, ok := lib.Frames(key, c.Codec)
			if !ok {
				return fmt.Errorf("phone: no prompt %q to play", key)
			}
			frames = append(frames, f...)
		}
		played = make(chan bool, 1)
		c.sess.Play(frames, media.PlayOptions{OnDone: func(completed bool) {
			select {
			case played <- completed:
			default:
			}
		}})
	} else {
		c.Play([][]byte{frame}, true)
	}

	var hangup <-chan time.Time
	if s.HangupAfter > 0 {
		t := time.NewTimer(time.Until(c.AnsweredAt.Add(s.HangupAfter)))
		defer t.Stop()
		hangup = t.C
	}
	next := 0 // next digit to send
	var dtmfC <-chan time.Time
	dtmfT := time.NewTimer(time.Hour)
	dtmfT.Stop()
	defer dtmfT.Stop()
	anchored := false
	var holdC, unholdC, referC <-chan time.Time
	if s.ReferTo != "" {
		t := time.NewTimer(time.Until(c.AnsweredAt.Add(s.ReferAfter)))
		defer t.Stop()
		referC = t.C
	}
	if s.HoldAfter > 0 {
		t := time.NewTimer(time.Until(c.AnsweredAt.Add(s.HoldAfter)))
		defer t.Stop()
		holdC = t.C
	}
	if len(s.Digits) > 0 {
		if s.DTMFAnchor == "" {
			// Until a prompt starts, count from the answer.
			dtmfT.Reset(time.Until(c.AnsweredAt.Add(s.DTMFAfter)))
			dtmfC = dtmfT.C
		}
	}
	for {
		select {
		case <-played:
			played = nil
			c.Play([][]byte{frame}, true)
		case ps := <-c.promptStarts:
			if anchored || next > 0 || len(s.Digits) == 0 {
				continue
			}
			if s.DTMFAnchor != "" && ps.Key != s.DTMFAnchor {
				continue
			}
			anchored = true
			dtmfT.Stop()
			dtmfT.Reset(time.Until(ps.Start.Add(s.DTMFAfter)))
			dtmfC = dtmfT.C
		case <-dtmfC:
			if err := c.SendDTMF(ctx, s.Digits[next], s.DTMFMode, s.DTMFDuration); err != nil {
				// Recorded in the report; carry on with the call.
				c.p.log.Warn("phone: DTMF", "call", c.ID, "error", err)
			}
			next++
			if next < len(s.Digits) {
				gap := s.DTMFAfter
				if s.DTMFGap > 0 {
					gap = s.DTMFGap
				}
				dtmfT.Reset(gap)
			} else {
				dtmfC = nil
			}
		case <-holdC:
			holdC = nil
			if err := c.Reinvite(ctx, "sendonly"); err != nil {
				c.p.log.Warn("phone: hold", "call", c.ID, "error", err)
			}
			if s.HoldFor > 0 {
				t := time.NewTimer(s.HoldFor)
				defer t.Stop()
				unholdC = t.C
			}
		case <-referC:
			referC = nil
			if err := c.Refer(ctx, s.ReferTo); err != nil {
				c.p.log.Warn("phone: refer", "call", c.ID, "error", err)
			}
		case <-unholdC:
			unholdC = nil
			if err := c.Reinvite(ctx, "sendrecv"); err != nil {
				c.p.log.Warn("phone: unhold", "call", c.ID, "error", err)
			}
		case <-hangup:
			return c.Hangup(context.WithoutCancel(ctx))
		case <-c.ended:
			return nil
		case <-ctx.Done():
			return c.Hangup(context.WithoutCancel(ctx))
		}
	}
}

func (c *Call) report(s Script, start time.Time) Report {
	r := Report{
		SIPStatus:     c.Status,
		SIPReason:     c.Reason,
		Answered:      !c.AnsweredAt.IsZero(),
		From:          telemetry.MaskNumber(c.opts.From),
		To:            telemetry.MaskNumber(c.opts.To),
		Transport:     strings.ToLower(c.opts.Transport),
		PromptsHeard:  []string{},
		PromptsDetail: []PromptRun{},
		DTMFSent:      DTMFReport{Mode: s.DTMFMode, Events: []DTMFSent{}},
	}
	if r.Transport == "" {
		r.Transport = "udp"
	}
	if r.Answered {
		r.Codec = c.Codec.String()
		r.SetupMS = ms(c.AnsweredAt.Sub(c.InviteAt))
		r.answeredAt = c.AnsweredAt
	}
	if runs := c.Runs(); runs != nil {
		r.PromptsDetail = runs
		r.PromptsHeard = Heard(runs)
	}
	rx := c.RxStats()
	r.RTPReceived, r.RTPLost, r.DTMFReceived = rx.Received, rx.Lost, rx.DTMFReceived
	r.RTPSent = c.Sent()
	r.TonesReceived = c.TonesReceived()
	r.TonesLongestRun = c.TonesLongestRun()
	r.iat = c.Interarrival()
	r.Interarrival = r.iat.Summary()
	var digits strings.Builder
	for _, ev := range c.DTMF() {
		digits.WriteString(ev.Digit)
		ev.AtMS = ev.At.Sub(c.AnsweredAt).Milliseconds()
		if next, ok := NextRunAfter(r.PromptsDetail, ev.At); ok {
			ev.NextPrompt = next.Key
			v := ms(next.Start.Sub(ev.At))
			ev.NextPromptMS = &v
		}
		r.DTMFSent.Events = append(r.DTMFSent.Events, ev)
	}
	r.DTMFSent.Digits = digits.String()
	c.mu.Lock()
	r.Reinvites = make([]ReinviteResult, 0, len(c.reinvites))
	for _, ri := range c.reinvites {
		ri.AtMS = ri.At.Sub(c.AnsweredAt).Milliseconds()
		r.Reinvites = append(r.Reinvites, ri)
	}
	r.ReferStatus = c.referStatus
	c.mu.Unlock()
	if len(r.DTMFSent.Events) > 0 {
		r.DTMFToNextPromptMS = r.DTMFSent.Events[0].NextPromptMS
	}
	for i := range r.PromptsDetail {
		// Relative to the answer, already; keep the JSON independent of clocks.
		r.PromptsDetail[i].Start = time.Time{}
	}
	by, err := c.EndedBy()
	r.EndedBy = by
	if err != nil {
		r.Error = telemetry.Scrub(err.Error())
	}
	end := c.endAt
	if end.IsZero() {
		end = time.Now()
	}
	r.DurationMS = end.Sub(start).Milliseconds()
	return r
}

// Interarrival returns the call's interarrival histogram (for merging).
func (r *Report) InterarrivalHistogram() *Histogram { return r.iat }

// WriteText prints a short human summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "call %s -> %s over %s: %d %s", r.From, r.To, r.Transport, r.SIPStatus, r.SIPReason)
	if r.Answered {
		fmt.Fprintf(&b, ", answered in %.1f ms, %s", r.SetupMS, r.Codec)
	}
	fmt.Fprintf(&b, "\nended by %s after %.1f s", r.EndedBy, float64(r.DurationMS)/1000)
	if r.Error != "" {
		fmt.Fprintf(&b, " (%s)", r.Error)
	}
	fmt.Fprintf(&b, "\nprompts heard: %s\n", strings.Join(r.PromptsHeard, ", "))
	for _, p := range r.PromptsDetail {
		state := "not heard"
		switch {
		case p.Complete:
			state = "complete"
		case p.Heard:
			state = "cut"
		}
		fmt.Fprintf(&b, "  %-32s at %6d ms  %4d/%-4d frames  %s\n", p.Key, p.AtMS, p.FramesMatched, p.FramesTotal, state)
	}
	if len(r.DTMFSent.Events) > 0 {
		fmt.Fprintf(&b, "DTMF sent (%s):", r.DTMFSent.Mode)
		for _, ev := range r.DTMFSent.Events {
			fmt.Fprintf(&b, " %s@%dms", ev.Digit, ev.AtMS)
			if ev.NextPromptMS != nil {
				fmt.Fprintf(&b, "->%s in %.1f ms", ev.NextPrompt, *ev.NextPromptMS)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "RTP: received %d, lost %d, sent %d; interarrival p50 %.2f p99 %.2f max %.2f ms\n",
		r.RTPReceived, r.RTPLost, r.RTPSent, r.Interarrival.P50, r.Interarrival.P99, r.Interarrival.Max)
	if len(r.TonesReceived) > 0 {
		hz := make([]string, 0, len(r.TonesReceived))
		for f := range r.TonesReceived {
			hz = append(hz, f)
		}
		slices.Sort(hz)
		b.WriteString("tones received (frames):")
		for _, f := range hz {
			fmt.Fprintf(&b, " %s Hz %d (longest run %d)", f, r.TonesReceived[f], r.TonesLongestRun[f])
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ErrExpectation is returned by Check when a report misses an expectation.
var ErrExpectation = errors.New("expectation not met")

// Check compares a report with expectations: a SIP status (0: any 2xx, or
// 487 when the script cancels) and prompts that must be heard in this
// order (not necessarily adjacent).
func (r *Report) Check(status int, cancel bool, prompts []string) error {
	switch {
	case status != 0 && r.SIPStatus != status:
		return fmt.Errorf("%w: status %d, want %d", ErrExpectation, r.SIPStatus, status)
	case status == 0 && cancel && r.EndedBy != EndedCancel:
		return fmt.Errorf("%w: ended by %s, want cancel", ErrExpectation, r.EndedBy)
	case status == 0 && !cancel && !r.Answered:
		return fmt.Errorf("%w: not answered (%d %s)", ErrExpectation, r.SIPStatus, r.SIPReason)
	}
	i := 0
	for _, h := range r.PromptsHeard {
		if i < len(prompts) && h == prompts[i] {
			i++
		}
	}
	if i < len(prompts) {
		return fmt.Errorf("%w: prompt %s not heard in order (heard %v)", ErrExpectation, prompts[i], r.PromptsHeard)
	}
	return nil
}
