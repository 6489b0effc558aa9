package ivr_test

import (
	"context"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// fakeCall is an in-memory ivr.Call with real time: each prompt lasts
// promptDur, digits pressed (press) are buffered like a plane buffers them,
// and a barge-in prompt stops at the first digit.
type fakeCall struct {
	promptDur time.Duration
	caller    string
	// onPlay, if set, runs at the start of every Play (to press keys or
	// hang up "during" a prompt).
	onPlay func(c *fakeCall, keys []string)

	mu       sync.Mutex
	buf      []byte
	notify   chan struct{}
	done     chan struct{}
	ended    bool
	reason   string
	plays    []played
	answered int
}

type played struct {
	keys        []string
	bargeIn     bool
	interrupted bool
}

func newFakeCall(promptDur time.Duration) *fakeCall {
	return &fakeCall{promptDur: promptDur, caller: "13800138000", notify: make(chan struct{}), done: make(chan struct{})}
}

func (c *fakeCall) ID() string { return "fake-1" }
func (c *fakeCall) Info() ivr.CallInfo {
	return ivr.CallInfo{Caller: c.caller, Dialled: "12345", Plane: "fake", Started: time.Now()}
}
func (c *fakeCall) Answer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered++
	if c.ended {
		return ivr.ErrHungUp
	}
	return nil
}
func (c *fakeCall) Done() <-chan struct{} { return c.done }

// press buffers digits as the plane would when DTMF arrives.
func (c *fakeCall) press(digits string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, digits...)
	close(c.notify)
	c.notify = make(chan struct{})
}

// hangupRemote is the caller hanging up.
func (c *fakeCall) hangupRemote() { _ = c.Hangup(context.Background(), "remote BYE") }

func (c *fakeCall) Play(ctx context.Context, keys []string, bargeIn bool) error {
	if c.onPlay != nil {
		c.onPlay(c, keys)
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return ivr.ErrHungUp
	}
	c.plays = append(c.plays, played{keys: append([]string(nil), keys...), bargeIn: bargeIn})
	idx := len(c.plays) - 1
	c.mu.Unlock()
	timer := time.NewTimer(c.promptDur * time.Duration(len(keys)))
	defer timer.Stop()
	for {
		c.mu.Lock()
		if bargeIn && len(c.buf) > 0 {
			c.plays[idx].interrupted = true
			c.mu.Unlock()
			return nil
		}
		notify := c.notify
		c.mu.Unlock()
		select {
		case <-timer.C:
			return nil
		case <-notify:
		case <-c.done:
			return ivr.ErrHungUp
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *fakeCall) ReadDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if c.ended {
			c.mu.Unlock()
			return 0, ivr.ErrHungUp
		}
		if len(c.buf) > 0 {
			d := c.buf[0]
			c.buf = c.buf[1:]
			c.mu.Unlock()
			return d, nil
		}
		notify := c.notify
		c.mu.Unlock()
		if timeout == 0 {
			return 0, ivr.ErrTimeout
		}
		select {
		case <-timer.C:
			return 0, ivr.ErrTimeout
		case <-notify:
		case <-c.done:
			return 0, ivr.ErrHungUp
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (c *fakeCall) FlushDigits() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = nil
}

func (c *fakeCall) Hangup(ctx context.Context, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		c.ended = true
		c.reason = reason
		close(c.done)
	}
	return nil
}

func (c *fakeCall) playLog() []played {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]played(nil), c.plays...)
}

// flatKeys lists every key played, in order.
func (c *fakeCall) flatKeys() []string {
	var out []string
	for _, p := range c.playLog() {
		out = append(out, p.keys...)
	}
	return out
}

// recordRouter records decisions and answers with a fixed outcome.
type recordRouter struct {
	mu        sync.Mutex
	decisions []ivr.Decision
	status    string
	err       error
}

func (r *recordRouter) Route(ctx context.Context, call ivr.Call, d ivr.Decision) (ivr.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, d)
	if r.err != nil {
		return ivr.Outcome{}, r.err
	}
	return ivr.Outcome{Status: r.status}, nil
}
