package sip

import (
	"context"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// waitDigit takes the next buffered digit of an inbound call or an
// outbound leg (both keep digits, an ended flag and a 1-buffered signal
// under their mutex), waiting up to timeout for one (see ivr.Call.ReadDigit).
func waitDigit(ctx context.Context, mu *sync.Mutex, digits *[]byte, ended *bool, signal, done <-chan struct{}, timeout time.Duration) (byte, error) {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for {
		mu.Lock()
		if len(*digits) > 0 {
			d := (*digits)[0]
			*digits = (*digits)[1:]
			mu.Unlock()
			return d, nil
		}
		gone := *ended
		mu.Unlock()
		if gone {
			return 0, ivr.ErrHungUp
		}
		if timer == nil {
			return 0, ivr.ErrTimeout
		}
		select {
		case <-signal:
		case <-timer:
			return 0, ivr.ErrTimeout
		case <-done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
