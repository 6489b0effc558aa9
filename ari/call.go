package ari

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
)

// SoundURI maps an audio key "<lang>/<prompt id>" to the ARI media URI of
// our prompt as deploy/asterisk installs it: sounds/hotline/<lang>/<id>.alaw
// under Asterisk's sounds directory is "sound:hotline/<lang>/<id>". The
// ringback tone is Asterisk's own: "tone:ring;tonezone=cn" (indications
// [cn] ring, 450 Hz 1 s on 4 s off, the cadence prompts.Ringback
// synthesises); a tone playback lasts until it is stopped.
func SoundURI(key string) string {
	if key == prompts.Ringback {
		return "tone:ring;tonezone=cn"
	}
	return "sound:hotline/" + key
}

// call is one caller's channel in Stasis, as an ivr.Call.
//
// Events reach it through a bounded queue (q), drained by its own pump
// goroutine, so the stream goroutine never waits for a call. Overflow
// policy (deliver): the events that end a call (ChannelHangupRequest,
// StasisEnd, ChannelDestroyed) never queue — they end the call at once;
// any other event that finds the queue full is dropped and counted
// (Dropped), and a dropped PlaybackFinished is recovered by the next
// resync's GET /playbacks/{id}. A DTMF digit dropped that way is lost, as
// one pressed while the WebSocket was down is. With a pump that only
// updates memory, overflow means the process is starved, not that a
// handler is slow: handlers never read the queue.
type call struct {
	p    *Plane
	id   string
	info ivr.CallInfo
	q    chan Event

	done    chan struct{}
	endOnce sync.Once
	dropped atomic.Int64

	mu       sync.Mutex
	answered bool
	digits   []byte
	digitSig chan struct{}      // cap 1: "a digit was buffered"
	playing  map[string]*pbWait // playbacks Play waits for, by id
	current  string             // the playback Play waits for, once created

	out *outbound // set on a leg hotline originated (dialer.go)
}

func newCall(p *Plane, ch Channel, queue int) *call {
	return &call{
		p:  p,
		id: ch.ID,
		info: ivr.CallInfo{
			Caller:  ch.Caller.Number,
			Plane:   "ari",
			Started: time.Now(),
		},
		q:        make(chan Event, queue),
		done:     make(chan struct{}),
		answered: ch.State == "Up",
		digitSig: make(chan struct{}, 1),
		playing:  map[string]*pbWait{},
	}
}

// deliver hands an event to the call without ever blocking the stream.
func (c *call) deliver(ev Event) {
	switch ev.(type) {
	case *ChannelHangupRequest, *StasisEnd, *ChannelDestroyed:
		// A hang-up request ends the call for the IVR: Asterisk follows it
		// with StasisEnd (transcripts), and nothing useful can be played.
		if c.out != nil {
			c.noteEnd(ev)
		}
		c.end(ev.EventType())
		return
	}
	select {
	case c.q <- ev:
	default:
		n := c.dropped.Add(1)
		c.p.log.Warn("ari: call event queue full: event dropped", "channel", c.id, "type", ev.EventType(), "dropped", n)
	}
}

// Dropped counts events dropped because the call's queue was full.
func (c *call) Dropped() int64 { return c.dropped.Load() }

func (c *call) pump() {
	for {
		select {
		case <-c.done:
			return
		case ev := <-c.q:
			c.handle(ev)
		}
	}
}

func (c *call) handle(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *ChannelDTMFReceived:
		// Sent by Asterisk at the END of the digit (transcript barge-in:
		// duration_ms 280), never at its start.
		if len(e.Digit) == 1 && validDigit(e.Digit[0]) {
			c.digits = append(c.digits, e.Digit[0])
			select {
			case c.digitSig <- struct{}{}:
			default:
			}
		}
	case *ChannelStateChange:
		if e.Channel.State == "Up" {
			c.answered = true
		}
	case *PlaybackFinished:
		c.finishedLocked(e.Playback.ID, e.Playback.State)
	}
}

func validDigit(d byte) bool {
	return (d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D')
}

// pbWait is a playback Play waits for: done closes at PlaybackFinished,
// whose state ("done", or "failed") is kept.
type pbWait struct {
	done  chan struct{}
	state string
}

func (c *call) finishedLocked(playbackID, state string) {
	if w, ok := c.playing[playbackID]; ok {
		w.state = state
		close(w.done)
		delete(c.playing, playbackID)
	}
}

// end marks the call ended (idempotent) and forgets it.
func (c *call) end(why string) {
	c.endOnce.Do(func() {
		c.p.log.Info("ari: call ended", "channel", c.id, "by", why)
		close(c.done)
		c.p.remove(c.id, c)
	})
}

func (c *call) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// recheckPlayback runs after a reconnect: a PlaybackFinished may have been
// missed while no socket was connected.
func (c *call) recheckPlayback(ctx context.Context) {
	c.mu.Lock()
	id := c.current
	_, waiting := c.playing[id]
	c.mu.Unlock()
	if id == "" || !waiting {
		return
	}
	pb, err := c.p.client.PlaybacksGet(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && pb.State != "playing" && pb.State != "queued") {
		c.mu.Lock()
		c.finishedLocked(id, "done")
		c.mu.Unlock()
	}
}

// finish runs when the handler returned: a call still up is hung up, or,
// when the plane is stopping, handed back to the dialplan (continue), so a
// restart of hotlined does not cut callers off. Calls whose StasisEnd is
// still in flight when the plane stops are ended by Plane.Run's sweep.
func (c *call) finish(ctx context.Context) {
	if c.ended() {
		return
	}
	if c.p.isStopping() || ctx.Err() != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.p.cfg.ShutdownTimeout)
		defer cancel()
		err := c.p.client.ChannelsContinueInDialplan(sctx, c.id, ChannelsContinueInDialplanParams{})
		if err != nil && !errors.Is(err, ErrNotFound) {
			c.p.log.Warn("ari: shutdown: continue failed, hanging up", "channel", c.id, "err", err)
			_ = c.hangup(sctx, "normal", "shutdown")
		}
		c.end("shutdown")
		return
	}
	if err := c.hangup(ctx, "normal", "handler returned"); err != nil {
		c.p.log.Warn("ari: hang-up after handler", "channel", c.id, "err", err)
	}
}

// ID implements ivr.Call: the ARI channel id.
func (c *call) ID() string { return c.id }

// Info implements ivr.Call.
func (c *call) Info() ivr.CallInfo { return c.info }

// Done implements ivr.Call: closed on ChannelHangupRequest, StasisEnd,
// ChannelDestroyed, or a resync that finds the channel gone.
func (c *call) Done() <-chan struct{} { return c.done }

// Answer implements ivr.Call.
func (c *call) Answer(ctx context.Context) error {
	if c.ended() {
		return errHungUp("answer", c.id)
	}
	c.mu.Lock()
	answered := c.answered
	c.mu.Unlock()
	if answered {
		return nil
	}
	if c.out != nil {
		// A leg we originated is answered by the far end, never by us.
		return fmt.Errorf("ari: answer %s: an originated leg that has not answered", c.id)
	}
	if err := c.p.client.ChannelsAnswer(ctx, c.id); err != nil {
		// Transcript early-hangup: answering a channel that hung up gives
		// 404 {"message":"Channel not found"}.
		if errors.Is(err, ErrNotFound) || c.ended() {
			c.end("answer: not found")
			return errHungUp("answer", c.id)
		}
		return fmt.Errorf("ari: answer %s: %w", c.id, err)
	}
	c.mu.Lock()
	c.answered = true
	c.mu.Unlock()
	return nil
}

// Play implements ivr.Call. All keys go in one ARI playback (media list).
// ARI does not stop a playback on DTMF (transcript barge-in): with bargeIn,
// Play stops it itself (DELETE /playbacks/{id}) when a digit is buffered.
// The playback id is ours (playbackId=…), because PlaybackStarted — and
// for a short prompt PlaybackFinished — can arrive before the play reply.
func (c *call) Play(ctx context.Context, keys []string, bargeIn bool) error {
	if len(keys) == 0 {
		return nil
	}
	media := make([]string, len(keys))
	for i, k := range keys {
		if c.p.cfg.HasPrompt != nil && !c.p.cfg.HasPrompt(k) {
			return fmt.Errorf("ari: play %s: no audio for %q", c.id, k)
		}
		media[i] = SoundURI(k)
	}
	// Like the sip plane: playing answers the call (Answer is idempotent).
	if err := c.Answer(ctx); err != nil {
		return err
	}
	if bargeIn && c.hasDigit() {
		// A digit typed ahead already answers this prompt.
		return nil
	}
	id := uuid.NewString()
	w := &pbWait{done: make(chan struct{})}
	fin := w.done
	c.mu.Lock()
	c.playing[id] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.playing, id)
		if c.current == id {
			c.current = ""
		}
		c.mu.Unlock()
	}()
	if _, err := c.p.client.ChannelsPlay(ctx, c.id, ChannelsPlayParams{Media: media, PlaybackID: id}); err != nil {
		if errors.Is(err, ErrNotFound) || c.ended() {
			return errHungUp("play", c.id)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("ari: play %s: %w", c.id, err)
	}
	// Only now may a resync look the playback up: before the reply, a 404
	// would mean "not created yet", not "finished".
	c.mu.Lock()
	c.current = id
	c.mu.Unlock()
	var digit <-chan struct{}
	if bargeIn {
		digit = c.digitSig
	}
	for {
		if bargeIn && c.hasDigit() {
			c.stopPlayback(ctx, id)
			return nil
		}
		select {
		case <-fin:
			if w.state == "failed" {
				// Asterisk also says "failed" for a playback cut by a
				// hang-up (transcript ws-reconnect); otherwise the sound
				// file is missing or unreadable (see deploy/asterisk).
				if c.ended() {
					return errHungUp("play", c.id)
				}
				return fmt.Errorf("ari: play %s: playback of %s failed (sound files installed?)", c.id, strings.Join(media, ","))
			}
			return nil
		case <-c.done:
			return errHungUp("play", c.id)
		case <-ctx.Done():
			c.stopPlayback(ctx, id)
			return ctx.Err()
		case <-digit:
			// loop: hasDigit decides (FlushDigits may have emptied it)
		}
	}
}

// stopPlayback stops a playback; 404 means it had finished already.
func (c *call) stopPlayback(ctx context.Context, id string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.p.client.timeout)
	defer cancel()
	if err := c.p.client.PlaybacksStop(sctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		c.p.log.Warn("ari: stop playback", "channel", c.id, "playback", id, "err", err)
	}
}

func (c *call) hasDigit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.digits) > 0
}

func (c *call) popDigit() (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.digits) == 0 {
		return 0, false
	}
	d := c.digits[0]
	c.digits = c.digits[1:]
	return d, true
}

// ReadDigit implements ivr.Call.
func (c *call) ReadDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	if d, ok := c.popDigit(); ok {
		return d, nil
	}
	if c.ended() {
		return 0, errHungUp("read digit", c.id)
	}
	if timeout <= 0 {
		return 0, ivr.ErrTimeout
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-c.digitSig:
			if d, ok := c.popDigit(); ok {
				return d, nil
			}
		case <-c.done:
			if d, ok := c.popDigit(); ok {
				return d, nil
			}
			return 0, errHungUp("read digit", c.id)
		case <-t.C:
			return 0, ivr.ErrTimeout
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// FlushDigits implements ivr.Call.
func (c *call) FlushDigits() {
	c.mu.Lock()
	c.digits = c.digits[:0]
	c.mu.Unlock()
}

// Hangup implements ivr.Call. The reason is for the record (logged);
// Asterisk gets reason=normal (cause 16). A 404 — the channel is already
// gone — is not an error. Done closes when StasisEnd arrives.
func (c *call) Hangup(ctx context.Context, reason string) error {
	c.cancelled(reason)
	return c.hangup(ctx, "normal", reason)
}

func (c *call) hangup(ctx context.Context, ariReason, why string) error {
	if c.ended() {
		return nil
	}
	c.p.log.Info("ari: hanging up", "channel", c.id, "reason", why)
	err := c.p.client.ChannelsHangup(ctx, c.id, ChannelsHangupParams{Reason: ariReason})
	if errors.Is(err, ErrNotFound) {
		c.end("hangup: already gone")
		return nil
	}
	if err != nil {
		return fmt.Errorf("ari: hangup %s: %w", c.id, err)
	}
	return nil
}

var _ ivr.Call = (*call)(nil)
