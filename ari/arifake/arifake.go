// Package arifake is a fake Asterisk for tests: an HTTP server that serves
// the subset of ARI the ari package uses (paths and replies as in Asterisk's
// spec) and the events WebSocket, and emits events in the order a real
// Asterisk 22.10.1 did in the recorded transcripts (see ../testdata and
// ../fake_order_test.go, which checks that order).
//
// Asterisk behaviours it reproduces:
//   - answer: ChannelStateChange(Up) is sent before the 204;
//   - play: PlaybackStarted is sent before the 201; ARI does not stop a
//     playback on DTMF; DELETE /playbacks/{id} sends PlaybackFinished
//     (state "done") before its 204;
//   - ChannelDtmfReceived is sent once, at the END of a digit;
//   - the caller hanging up: ChannelHangupRequest (no cause), then
//     PlaybackFinished (state "failed") if a playback was running, then
//     StasisEnd; DELETE /channels/{id}: the same with cause 32, soft;
//     no ChannelDestroyed for an inbound caller after StasisEnd;
//   - events that happen while no WebSocket is connected are lost, never
//     replayed; a new connection gets nothing until a new event happens;
//   - a 404 {"message":"Channel not found"} for a channel that is gone.
package arifake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cq12345/hotline/ari"
)

// Request is one REST request the fake served.
type Request struct {
	Method, Path, Query string
	Status              int
}

// Server is the fake Asterisk.
type Server struct {
	// MediaDuration says how long one media URI plays (default 200 ms).
	// Set it before the first call.
	MediaDuration func(uri string) time.Duration
	// Missing says a sound file does not exist: its playback starts and
	// finishes at once with state "failed" (a fake's choice: not recorded).
	Missing func(uri string) bool

	app, user, pass string
	srv             *httptest.Server
	asteriskID      string

	mu        sync.Mutex
	conns     map[*conn]bool
	connects  int
	connSig   chan struct{} // closed and replaced on each new connection
	refuse    bool
	channels  map[string]*channel
	playbacks map[string]*playback
	requests  []Request
	emitted   []Emitted
	seq       int
	closed    bool
	endpoints map[string]Endpoint
	bridges   map[string]*bridge
	timers    []*time.Timer
}

// Emitted is one event the fake generated, and whether a WebSocket was
// connected to receive it.
type Emitted struct {
	Type      string
	Channel   string
	Delivered bool
}

type conn struct {
	ws   *websocket.Conn
	out  chan frame
	done chan struct{}
}

type frame struct {
	data    []byte
	written chan struct{}
}

type channel struct {
	id, name, state string
	caller, exten   string
	args            []string
	created         time.Time
	inStasis        bool
	originated      bool
	endpoint        string
	bridge          *bridge
	vars            map[string]string
	playback        *playback
	played          []string
}

type playback struct {
	id     string
	media  []string
	idx    int
	target *channel
	state  string
	timer  *time.Timer
}

// New starts a fake Asterisk on 127.0.0.1 for application app, user and
// password (basic auth).
func New(app, user, password string) *Server {
	s := &Server{
		app: app, user: user, pass: password,
		asteriskID: "02:fc:00:00:00:01",
		conns:      map[*conn]bool{},
		connSig:    make(chan struct{}),
		channels:   map[string]*channel{},
		playbacks:  map[string]*playback{},
		endpoints:  map[string]Endpoint{},
		bridges:    map[string]*bridge{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ari/channels", s.originate)
	mux.HandleFunc("POST /ari/bridges", s.createBridge)
	mux.HandleFunc("POST /ari/bridges/{id}/addChannel", s.addChannel)
	mux.HandleFunc("DELETE /ari/bridges/{id}", s.destroyBridge)
	mux.HandleFunc("GET /ari/events", s.events)
	mux.HandleFunc("GET /ari/asterisk/info", s.info)
	mux.HandleFunc("GET /ari/asterisk/ping", s.ping)
	mux.HandleFunc("GET /ari/applications/{app}", s.application)
	mux.HandleFunc("GET /ari/channels", s.listChannels)
	mux.HandleFunc("GET /ari/channels/{id}", s.getChannel)
	mux.HandleFunc("DELETE /ari/channels/{id}", s.hangupChannel)
	mux.HandleFunc("POST /ari/channels/{id}/answer", s.answer)
	mux.HandleFunc("POST /ari/channels/{id}/play", s.play)
	mux.HandleFunc("POST /ari/channels/{id}/continue", s.continueInDialplan)
	mux.HandleFunc("GET /ari/channels/{id}/variable", s.getVar)
	mux.HandleFunc("POST /ari/channels/{id}/variable", s.setVar)
	mux.HandleFunc("GET /ari/playbacks/{id}", s.getPlayback)
	mux.HandleFunc("DELETE /ari/playbacks/{id}", s.stopPlayback)
	s.srv = httptest.NewServer(s.auth(mux))
	return s
}

// URL is the fake's HTTP base URL (as for ari.Config.URL).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the fake: it drops every WebSocket and stops all playbacks.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for _, pb := range s.playbacks {
		if pb.timer != nil {
			pb.timer.Stop()
		}
	}
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.DropConnections()
	s.srv.Close()
}

// Requests returns the REST requests served so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Emitted returns the events generated so far, in order.
func (s *Server) Emitted() []Emitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Emitted(nil), s.emitted...)
}

// Connections counts the WebSocket connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// WaitConnections waits until at least n WebSocket connections have been
// accepted in total.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, sig := s.connects, s.connSig
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("arifake: %d connections, want %d: %w", got, n, ctx.Err())
		case <-sig:
		}
	}
}

// DropConnections closes every events WebSocket, as a network failure or
// an Asterisk HTTP restart would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
		delete(s.conns, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.ws.CloseNow()
		<-c.done
	}
}

// Refuse makes the events endpoint answer 503 while on (the WebSocket
// stays down, so events in that window are lost).
func (s *Server) Refuse(on bool) {
	s.mu.Lock()
	s.refuse = on
	s.mu.Unlock()
}

// CallOptions describe an inbound call.
type CallOptions struct {
	Caller string   // caller id number (default "13800138000")
	Exten  string   // dialplan extension (default "12345")
	Args   []string // Stasis args (default none, as in the transcripts)
}

// Call is an inbound call the test drives.
type Call struct {
	s  *Server
	id string
	ch *channel // kept so Played still answers once the channel is gone
}

// Call places an inbound call: the channel enters Stasis(app) in state
// Ring and StasisStart is emitted.
func (s *Server) Call(o CallOptions) *Call {
	if o.Caller == "" {
		o.Caller = "13800138000"
	}
	if o.Exten == "" {
		o.Exten = "12345"
	}
	if o.Args == nil {
		o.Args = []string{}
	}
	s.mu.Lock()
	s.seq++
	ch := &channel{
		id:       fmt.Sprintf("1795835327.%d", 7000+s.seq),
		name:     fmt.Sprintf("PJSIP/sipp-%08x", s.seq),
		state:    "Ring",
		caller:   o.Caller,
		exten:    o.Exten,
		args:     o.Args,
		created:  time.Now(),
		inStasis: true,
		vars:     map[string]string{},
	}
	s.channels[ch.id] = ch
	ev := &ari.StasisStart{EventBase: s.base("StasisStart"), Args: ch.args, Channel: ch.snapshot(s.app)}
	wait := s.emitLocked(ch.id, ev)
	s.mu.Unlock()
	wait()
	return &Call{s: s, id: ch.id, ch: ch}
}

// ID is the channel id.
func (c *Call) ID() string { return c.id }

// Press sends DTMF digit d: Asterisk emits ChannelDtmfReceived when the
// digit ENDS (duration_ms 280 as in the barge-in transcript).
func (c *Call) Press(d byte) {
	s := c.s
	s.mu.Lock()
	ch := s.channels[c.id]
	if ch == nil || !ch.inStasis {
		s.mu.Unlock()
		return
	}
	wait := s.emitLocked(ch.id, &ari.ChannelDTMFReceived{EventBase: s.base("ChannelDtmfReceived"), Digit: string(d), DurationMs: 280, Channel: ch.snapshot(s.app)})
	s.mu.Unlock()
	wait()
}

// HangUp is the caller hanging up. Answered, it is a BYE:
// ChannelHangupRequest without a cause, PlaybackFinished(failed) if
// playing, StasisEnd. Not answered, it is a CANCEL (transcript
// early-hangup): ChannelHangupRequest{cause:127,tech_cause:487}, StasisEnd.
func (c *Call) HangUp() {
	s := c.s
	s.mu.Lock()
	ch := s.channels[c.id]
	if ch == nil {
		s.mu.Unlock()
		return
	}
	var cause, tech *int
	if ch.state != "Up" {
		c127, c487 := 127, 487
		cause, tech = &c127, &c487
	}
	wait := s.hangupLocked(ch, cause, tech, false)
	s.mu.Unlock()
	wait()
}

// Channel returns a handle on any channel by id (an originated leg, say),
// or nil.
func (s *Server) Channel(id string) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels[id] == nil {
		return nil
	}
	return &Call{s: s, id: id, ch: s.channels[id]}
}

// Originated lists the channels originated through ARI that still exist.
func (s *Server) Originated() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Call
	for id, ch := range s.channels {
		if ch.originated {
			out = append(out, &Call{s: s, id: id, ch: ch})
		}
	}
	return out
}

// Bridged reports whether the channel is in a bridge now.
func (c *Call) Bridged() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	ch := c.s.channels[c.id]
	return ch != nil && ch.bridge != nil
}

// Gone reports whether the channel no longer exists.
func (c *Call) Gone() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.channels[c.id] == nil
}

// State is the channel state ("Ring", "Up"), or "" when gone.
func (c *Call) State() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil {
		return ch.state
	}
	return ""
}

// InStasis reports whether the channel is still in the application (false
// after continue or hang-up).
func (c *Call) InStasis() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	ch := c.s.channels[c.id]
	return ch != nil && ch.inStasis
}

// Played lists the media URIs whose playback started on the call, in
// order; after the channel is gone it still lists what was played (what
// the caller heard, for tests that look once the call has ended).
func (c *Call) Played() []string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.ch != nil {
		return append([]string(nil), c.ch.played...)
	}
	return nil
}

// Playing is the media URI playing now, or "".
func (c *Call) Playing() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil && ch.playback != nil {
		return ch.playback.media[ch.playback.idx]
	}
	return ""
}

// SetVar sets a channel variable (as the dialplan's Set() would).
func (c *Call) SetVar(name, value string) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if ch := c.s.channels[c.id]; ch != nil {
		ch.vars[name] = value
	}
}

func (ch *channel) snapshot(app string) ari.Channel {
	data := app
	if len(ch.args) > 0 {
		data += "," + strings.Join(ch.args, ",")
	}
	return ari.Channel{
		ID: ch.id, Name: ch.name, State: ch.state,
		ProtocolID:   "1-28984@127.0.0.1",
		Caller:       ari.CallerID{Name: "", Number: ch.caller},
		Connected:    ari.CallerID{},
		Dialplan:     ari.DialplanCEP{Context: "from-trunk", Exten: ch.exten, Priority: 2, AppName: "Stasis", AppData: data},
		Creationtime: ari.Time{Time: ch.created},
		Language:     "en",
	}
}

func (s *Server) base(typ string) ari.EventBase {
	id := s.asteriskID
	return ari.EventBase{
		MessageBase: ari.MessageBase{Type: typ, AsteriskID: &id},
		Application: s.app,
		Timestamp:   ari.Time{Time: time.Now()},
	}
}

// emitLocked queues ev on every connected socket; the returned func waits
// until it was written, so a reply sent after it follows the event, as
// Asterisk's did in the transcripts. Called with s.mu held; call the
// returned func after unlocking.
func (s *Server) emitLocked(channelID string, ev ari.Event) func() {
	data, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("arifake: marshal %s: %v", ev.EventType(), err))
	}
	s.emitted = append(s.emitted, Emitted{Type: ev.EventType(), Channel: channelID, Delivered: len(s.conns) > 0})
	var waits []chan struct{}
	for c := range s.conns {
		f := frame{data: data, written: make(chan struct{})}
		select {
		case c.out <- f:
			waits = append(waits, f.written)
		case <-c.done:
		}
	}
	return func() {
		for _, w := range waits {
			select {
			case <-w:
			case <-time.After(2 * time.Second):
			}
		}
	}
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		if !ok || u != s.user || p != s.pass {
			rec.WriteHeader(http.StatusUnauthorized)
		} else {
			next.ServeHTTP(rec, r)
		}
		if r.URL.Path != "/ari/events" {
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status})
			s.mu.Unlock()
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Hijack lets the WebSocket upgrade through the recorder.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("app") != s.app {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "unknown application"})
		return
	}
	s.mu.Lock()
	refuse := s.refuse || s.closed
	s.mu.Unlock()
	if refuse {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "unavailable"})
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, out: make(chan frame, 256), done: make(chan struct{})}
	s.mu.Lock()
	s.conns[c] = true
	s.connects++
	close(s.connSig)
	s.connSig = make(chan struct{})
	s.mu.Unlock()
	// Reader: answers pings, notices the close.
	readErr := make(chan struct{})
	go func() {
		defer close(readErr)
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	defer func() {
		ws.CloseNow()
		<-readErr
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		close(c.done)
	}()
	for {
		select {
		case f := <-c.out:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := ws.Write(ctx, websocket.MessageText, f.data)
			cancel()
			close(f.written)
			if err != nil {
				return
			}
		case <-readErr:
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": what + " not found"})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, ari.AsteriskInfo{System: &ari.SystemInfo{Version: "22.10.1", EntityID: s.asteriskID}})
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, ari.AsteriskPing{AsteriskID: s.asteriskID, Ping: "pong", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")})
}

func (s *Server) application(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("app") != s.app {
		notFound(w, "Application")
		return
	}
	s.mu.Lock()
	app := ari.Application{Name: s.app, ChannelIDs: []string{}, BridgeIDs: []string{}, EndpointIDs: []string{}, DeviceNames: []string{}, EventsAllowed: []json.RawMessage{}, EventsDisallowed: []json.RawMessage{}}
	for id, ch := range s.channels {
		if ch.inStasis {
			app.ChannelIDs = append(app.ChannelIDs, id)
		}
	}
	s.mu.Unlock()
	writeJSON(w, 200, app)
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []ari.Channel{}
	for _, ch := range s.channels {
		out = append(out, ch.snapshot(s.app))
	}
	s.mu.Unlock()
	writeJSON(w, 200, out)
}

// lookup returns the channel of the request's {id}, or writes a 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *channel {
	ch := s.channels[r.PathValue("id")]
	if ch == nil {
		notFound(w, "Channel")
	}
	return ch
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.lookup(w, r); ch != nil {
		writeJSON(w, 200, ch.snapshot(s.app))
	}
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.lookup(w, r)
	if ch == nil {
		s.mu.Unlock()
		return
	}
	if !ch.inStasis {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"message": "Channel not in Stasis application"})
		return
	}
	wait := func() {}
	if ch.state != "Up" {
		ch.state = "Up"
		wait = s.emitLocked(ch.id, &ari.ChannelStateChange{EventBase: s.base("ChannelStateChange"), Channel: ch.snapshot(s.app)})
	}
	s.mu.Unlock()
	wait()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) play(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	media := strings.Split(q.Get("media"), ",")
	if q.Get("media") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "media: missing required parameter"})
		return
	}
	s.mu.Lock()
	ch := s.lookup(w, r)
	if ch == nil {
		s.mu.Unlock()
		return
	}
	if !ch.inStasis {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"message": "Channel not in Stasis application"})
		return
	}
	id := q.Get("playbackId")
	if id == "" {
		s.seq++
		id = fmt.Sprintf("pb-%d", s.seq)
	}
	if s.playbacks[id] != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"message": "Playback id in use"})
		return
	}
	pb := &playback{id: id, media: media, target: ch, state: "playing"}
	s.playbacks[id] = pb
	var wait func()
	if ch.playback == nil {
		wait = s.startLocked(pb)
	} else {
		// Asterisk queues a second playback behind the first.
		pb.state = "queued"
		wait = func() {}
	}
	reply := pb.model()
	s.mu.Unlock()
	wait()
	writeJSON(w, http.StatusCreated, reply)
}

func (pb *playback) model() ari.Playback {
	lang := "en"
	return ari.Playback{ID: pb.id, MediaURI: pb.media[pb.idx], TargetURI: "channel:" + pb.target.id, Language: &lang, State: pb.state}
}

// startLocked starts pb on its channel (PlaybackStarted) and schedules
// its end.
func (s *Server) startLocked(pb *playback) func() {
	ch := pb.target
	ch.playback = pb
	pb.state = "playing"
	ch.played = append(ch.played, pb.media[pb.idx])
	wait := s.emitLocked(ch.id, &ari.PlaybackStarted{EventBase: s.base("PlaybackStarted"), Playback: pb.model()})
	s.scheduleLocked(pb)
	return wait
}

func (s *Server) scheduleLocked(pb *playback) {
	d := 200 * time.Millisecond
	if s.MediaDuration != nil {
		d = s.MediaDuration(pb.media[pb.idx])
	}
	if s.Missing != nil && s.Missing(pb.media[pb.idx]) {
		pb.timer = time.AfterFunc(time.Millisecond, func() {
			s.mu.Lock()
			if s.closed || pb.state != "playing" || s.playbacks[pb.id] != pb {
				s.mu.Unlock()
				return
			}
			wait := s.finishLocked(pb, "failed")
			s.mu.Unlock()
			wait()
		})
		return
	}
	if strings.HasPrefix(pb.media[pb.idx], "tone:") {
		// Asterisk plays a tone: URI until the playback is stopped (or
		// the channel hangs up); it never finishes by itself.
		return
	}
	pb.timer = time.AfterFunc(d, func() { s.mediaEnded(pb) })
}

func (s *Server) mediaEnded(pb *playback) {
	s.mu.Lock()
	if s.closed || pb.state != "playing" || s.playbacks[pb.id] != pb {
		s.mu.Unlock()
		return
	}
	var wait func()
	if pb.idx+1 < len(pb.media) {
		pb.idx++
		pb.target.played = append(pb.target.played, pb.media[pb.idx])
		wait = s.emitLocked(pb.target.id, &ari.PlaybackContinuing{EventBase: s.base("PlaybackContinuing"), Playback: pb.model()})
		s.scheduleLocked(pb)
	} else {
		wait = s.finishLocked(pb, "done")
	}
	s.mu.Unlock()
	wait()
}

// finishLocked ends pb with state ("done" when it ended or was stopped,
// "failed" when its channel hung up) and starts a queued one.
func (s *Server) finishLocked(pb *playback, state string) func() {
	if pb.timer != nil {
		pb.timer.Stop()
	}
	pb.state = state
	delete(s.playbacks, pb.id)
	ch := pb.target
	if ch.playback == pb {
		ch.playback = nil
	}
	waits := []func(){s.emitLocked(ch.id, &ari.PlaybackFinished{EventBase: s.base("PlaybackFinished"), Playback: pb.model()})}
	if state == "done" && s.channels[ch.id] == ch {
		for _, next := range s.playbacks {
			if next.target == ch && next.state == "queued" {
				waits = append(waits, s.startLocked(next))
				break
			}
		}
	}
	return func() {
		for _, w := range waits {
			w()
		}
	}
}

func (s *Server) getPlayback(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pb := s.playbacks[r.PathValue("id")]
	if pb == nil {
		notFound(w, "Playback")
		return
	}
	writeJSON(w, 200, pb.model())
}

func (s *Server) stopPlayback(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pb := s.playbacks[r.PathValue("id")]
	if pb == nil {
		s.mu.Unlock()
		notFound(w, "Playback")
		return
	}
	wait := s.finishLocked(pb, "done")
	s.mu.Unlock()
	wait()
	w.WriteHeader(http.StatusNoContent)
}

// hangupLocked ends ch: ChannelHangupRequest (cause 32 soft for a DELETE,
// none for a remote BYE), PlaybackFinished(failed), StasisEnd.
func (s *Server) hangupLocked(ch *channel, cause, techCause *int, soft bool) func() {
	ev := &ari.ChannelHangupRequest{EventBase: s.base("ChannelHangupRequest"), Channel: ch.snapshot(s.app), Cause: cause, TechCause: techCause}
	if soft {
		ev.Soft = &soft
	}
	var waits []func()
	subscribed := ch.inStasis || ch.originated
	if subscribed {
		waits = append(waits, s.emitLocked(ch.id, ev))
	}
	if ch.bridge != nil {
		waits = append(waits, s.leaveBridgeLocked(ch))
	}
	if ch.originated && !ch.inStasis {
		// A leg still ringing: the dial is cancelled.
		waits = append(waits, s.emitLocked(ch.id, s.dial(ch, "CANCEL")))
	}
	for _, pb := range s.playbacks {
		if pb.target == ch {
			if ch.inStasis {
				waits = append(waits, s.finishLocked(pb, "failed"))
			} else {
				delete(s.playbacks, pb.id)
			}
		}
	}
	if ch.inStasis {
		waits = append(waits, s.emitLocked(ch.id, &ari.StasisEnd{EventBase: s.base("StasisEnd"), Channel: ch.snapshot(s.app)}))
	}
	ch.inStasis = false
	if ch.originated {
		// Originated legs get ChannelDestroyed after StasisEnd; inbound
		// callers do not (transcripts bridge-to-agent, transfer-12315).
		waits = append(waits, s.emitLocked(ch.id, &ari.ChannelDestroyed{EventBase: s.base("ChannelDestroyed"), Cause: 16, CauseTxt: "Normal Clearing", Channel: ch.snapshot(s.app)}))
	}
	delete(s.channels, ch.id)
	return func() {
		for _, w := range waits {
			w()
		}
	}
}

func (s *Server) hangupChannel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.lookup(w, r)
	if ch == nil {
		s.mu.Unlock()
		return
	}
	cause := 32
	wait := s.hangupLocked(ch, &cause, nil, true)
	s.mu.Unlock()
	wait()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) continueInDialplan(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.lookup(w, r)
	if ch == nil {
		s.mu.Unlock()
		return
	}
	if !ch.inStasis {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"message": "Channel not in Stasis application"})
		return
	}
	for _, pb := range s.playbacks {
		if pb.target == ch {
			pb.timer.Stop()
			delete(s.playbacks, pb.id)
		}
	}
	ch.playback = nil
	wait := s.emitLocked(ch.id, &ari.StasisEnd{EventBase: s.base("StasisEnd"), Channel: ch.snapshot(s.app)})
	ch.inStasis = false
	s.mu.Unlock()
	wait()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getVar(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("variable")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "variable: missing required parameter"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.lookup(w, r)
	if ch == nil {
		return
	}
	v, ok := ch.vars[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Provided variable was not found"})
		return
	}
	writeJSON(w, 200, ari.Variable{Value: v})
}

func (s *Server) setVar(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.lookup(w, r)
	if ch == nil {
		return
	}
	ch.vars[q.Get("variable")] = q.Get("value")
	w.WriteHeader(http.StatusNoContent)
}
