package phone

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/prompts"
)

// TestAnswer calls one phone from another: the line role (answer, play a
// prompt, talk, hang up), busy, ring-no-answer and a wrong number.
func TestAnswer(t *testing.T) {
	lib := loadLib(t)
	tests := []struct {
		name        string
		answer      AnswerConfig
		dial        DialOptions
		script      Script
		status      int
		callerBy    string
		calleeBy    string
		callerHeard []string
		calleeHeard []string
	}{
		{
			name:        "line answers, audio both ways, line hangs up",
			answer:      AnswerConfig{Numbers: []string{"12315"}, RingFor: 200 * time.Millisecond, Script: Script{Play: []string{"en/digit-5"}, HangupAfter: 1500 * time.Millisecond}},
			dial:        DialOptions{To: "12315", From: "13800138000"},
			script:      Script{Play: []string{"en/digit-7"}, HangupAfter: 5 * time.Second},
			status:      200,
			callerBy:    EndedRemote,
			calleeBy:    EndedLocal,
			callerHeard: []string{"en/digit-5"},
			calleeHeard: []string{"en/digit-7"},
		},
		{
			name:        "late offer over tcp, caller hangs up",
			answer:      AnswerConfig{Script: Script{Play: []string{"en/digit-1"}}},
			dial:        DialOptions{To: "12315", From: "13800138000", Transport: "tcp", LateOffer: true, Codecs: []prompts.Codec{prompts.PCMU}},
			script:      Script{Play: []string{"en/digit-2"}, HangupAfter: 1500 * time.Millisecond},
			status:      200,
			callerBy:    EndedLocal,
			calleeBy:    EndedRemote,
			callerHeard: []string{"en/digit-1"},
			calleeHeard: []string{"en/digit-2"},
		},
		{
			name:     "busy",
			answer:   AnswerConfig{Busy: true},
			dial:     DialOptions{To: "12315", From: "13800138000"},
			status:   486,
			callerBy: EndedRemote,
		},
		{
			name:     "ring no answer, caller cancels",
			answer:   AnswerConfig{NoAnswer: true},
			dial:     DialOptions{To: "12315", From: "13800138000", CancelAfter: 400 * time.Millisecond},
			status:   487,
			callerBy: EndedCancel,
			calleeBy: EndedCancel,
		},
		{
			name:     "wrong number",
			answer:   AnswerConfig{Numbers: []string{"12315"}},
			dial:     DialOptions{To: "12333", From: "13800138000"},
			status:   404,
			callerBy: EndedRemote,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := newTestPhone(t, lib)
			caller := newTestPhone(t, lib)
			var mu sync.Mutex
			var calleeReports []Report
			tc.answer.OnReport = func(r Report) {
				mu.Lock()
				calleeReports = append(calleeReports, r)
				mu.Unlock()
			}
			ctx, stop := context.WithCancel(context.Background())
			answered := make(chan error, 1)
			go func() { answered <- line.Answer(ctx, tc.answer) }()
			defer func() {
				stop()
				if err := <-answered; err != nil {
					t.Error(err)
				}
			}()
			time.Sleep(10 * time.Millisecond) // let Answer install itself
			tc.dial.Target = line.SIPAddr(orUDP(tc.dial.Transport)).String()
			r := caller.Run(context.Background(), tc.dial, tc.script)
			if r.SIPStatus != tc.status || r.EndedBy != tc.callerBy {
				t.Fatalf("caller: status %d ended_by %s (%s), want %d %s", r.SIPStatus, r.EndedBy, r.Error, tc.status, tc.callerBy)
			}
			if !slices.Equal(r.PromptsHeard, orEmpty(tc.callerHeard)) {
				t.Errorf("caller heard %v, want %v", r.PromptsHeard, tc.callerHeard)
			}
			if tc.calleeBy == "" {
				return
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				mu.Lock()
				n := len(calleeReports)
				mu.Unlock()
				if n > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calleeReports) != 1 {
				t.Fatalf("callee reports: %d", len(calleeReports))
			}
			cr := calleeReports[0]
			if cr.EndedBy != tc.calleeBy || cr.From != "138****8000" || cr.To != "12315" {
				t.Errorf("callee: ended_by %s from %s to %s (%s), want %s", cr.EndedBy, cr.From, cr.To, cr.Error, tc.calleeBy)
			}
			if !slices.Equal(cr.PromptsHeard, orEmpty(tc.calleeHeard)) {
				t.Errorf("callee heard %v, want %v", cr.PromptsHeard, tc.calleeHeard)
			}
			if tc.status == 200 && (cr.RTPReceived < 30 || cr.Codec != r.Codec) {
				t.Errorf("callee RTP %d codec %s / caller codec %s", cr.RTPReceived, cr.Codec, r.Codec)
			}
		})
	}
}

func orUDP(s string) string {
	if s == "" {
		return "udp"
	}
	return s
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
