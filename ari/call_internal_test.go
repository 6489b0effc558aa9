package ari

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func quietPlane(t *testing.T) *Plane {
	t.Helper()
	p, err := New(Config{URL: "http://127.0.0.1:1", App: "hotline", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The overflow policy: with the queue full (nobody draining it), further
// non-terminal events are dropped and counted, and the events that end a
// call still end it at once.
func TestCallQueueOverflow(t *testing.T) {
	p := quietPlane(t)
	c := newCall(p, Channel{ID: "ch1", State: "Up"}, 2)
	p.calls["ch1"] = c
	dtmf := &ChannelDTMFReceived{EventBase: EventBase{MessageBase: MessageBase{Type: "ChannelDtmfReceived"}}, Digit: "1", Channel: Channel{ID: "ch1"}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			c.deliver(dtmf) // never blocks, although nothing drains q
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("deliver blocked on a full queue")
	}
	if got := c.Dropped(); got != 3 {
		t.Errorf("dropped %d, want 3 (queue of 2, 5 events)", got)
	}
	c.deliver(&StasisEnd{EventBase: EventBase{MessageBase: MessageBase{Type: "StasisEnd"}}, Channel: Channel{ID: "ch1"}})
	select {
	case <-c.Done():
	default:
		t.Fatal("StasisEnd did not end the call with its queue full")
	}
	if p.calls["ch1"] != nil {
		t.Error("ended call still registered")
	}
	// The two queued digits are still readable by the pump's handling.
	for len(c.q) > 0 {
		c.handle(<-c.q)
	}
	if d, err := c.ReadDigit(context.Background(), 0); err != nil || d != '1' {
		t.Errorf("ReadDigit = %q, %v", d, err)
	}
}

func TestDigitsFlushAndTimeout(t *testing.T) {
	p := quietPlane(t)
	c := newCall(p, Channel{ID: "ch1", State: "Up"}, 8)
	for _, d := range []string{"1", "#", "x", "12"} { // "x" and "12" are not DTMF digits
		c.handle(&ChannelDTMFReceived{Digit: d})
	}
	if d, _ := c.ReadDigit(context.Background(), 0); d != '1' {
		t.Errorf("first digit %q", d)
	}
	c.FlushDigits()
	t0 := time.Now()
	if _, err := c.ReadDigit(context.Background(), 30*time.Millisecond); !errors.Is(err, errTimeout()) {
		t.Errorf("ReadDigit after flush: %v", err)
	}
	if time.Since(t0) < 25*time.Millisecond {
		t.Error("ReadDigit returned before its timeout")
	}
}

func TestBackoffBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n := 0; n < 40; n++ {
		d := backoff(lo, hi, n)
		want := hi
		if n < 5 {
			want = lo << n
		}
		if d < want/2 || d > want {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
		}
	}
}

// A request that takes longer than RequestTimeout fails with a deadline.
func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := NewClient(ClientConfig{URL: srv.URL, RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = c.ChannelsAnswer(context.Background(), "ch1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want DeadlineExceeded", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("took %v", d)
	}
}
