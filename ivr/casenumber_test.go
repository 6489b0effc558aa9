package ivr_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// numberedCall is a call that opened a case (hotlined's calls do).
type numberedCall struct {
	*fakeCall
	number string
}

func (c numberedCall) CaseNumber() string { return c.number }

const ownCaseFlow = `
name: own
languages: [zh-CN]
start: own
nodes:
  own:
    kind: say
    prompts: your-case-number-is
    var: case_number_own
    as: case-number
    next: bye
  bye:
    kind: hangup
`

// The flow reads out the number of the case the call opened, digit by
// digit; a call without a case number skips the announcement entirely.
func TestSayOwnCaseNumber(t *testing.T) {
	f := mustLoad(t, ownCaseFlow)
	in := &ivr.Interpreter{Logger: slog.New(slog.DiscardHandler)}
	for _, tt := range []struct {
		name, number string
		want         []string
	}{
		{"numbered", "20261128-000123", []string{"zh-CN/your-case-number-is", "zh-CN/digit-2", "zh-CN/digit-0", "zh-CN/digit-2",
			"zh-CN/digit-6", "zh-CN/digit-1", "zh-CN/digit-1", "zh-CN/digit-2", "zh-CN/digit-8", "zh-CN/digit-dash",
			"zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-1", "zh-CN/digit-2", "zh-CN/digit-3"}},
		{"no number yet", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			call := numberedCall{newFakeCall(time.Millisecond), tt.number}
			if _, err := in.Run(context.Background(), call, f); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range call.playLog() {
				got = append(got, p.keys...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("played %v, want %v", got, tt.want)
			}
		})
	}
}
