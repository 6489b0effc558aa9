package media

import (
	"net/netip"
	"time"
)

// Engine is the RTP engine: a socket pool, receive loops and pacers.
type Engine struct {
	cfg Config
}

// NewEngine starts an engine.
func NewEngine(cfg Config) (*Engine, error) { return &Engine{cfg: cfg}, nil }

// Close stops pacers, closes sockets and sessions.
func (e *Engine) Close() error { return nil }

// Stats returns the engine counters.
func (e *Engine) Stats() EngineStats { return EngineStats{} }

// Session is one RTP session on a pool socket.
type Session struct {
	e   *Engine
	cfg SessionConfig
}

// NewSession creates a session.
func (e *Engine) NewSession(cfg SessionConfig) (*Session, error) {
	return &Session{e: e, cfg: cfg}, nil
}

// LocalAddr is the address:port to put in our SDP.
func (s *Session) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// SetRemote sets a new remote address.
func (s *Session) SetRemote(a netip.AddrPort) {}

// SetPayloadTypes changes the payload types we send.
func (s *Session) SetPayloadTypes(audio, dtmf uint8) {}

// Play replaces any current playback.
func (s *Session) Play(frames [][]byte, opts PlayOptions) {}

// Stop stops playback now.
func (s *Session) Stop() {}

// SendDTMF sends an RFC 4733 event.
func (s *Session) SendDTMF(digit byte, dur time.Duration) {}

// SetHold stops sending while held.
func (s *Session) SetHold(held bool) {}

// Close closes the session.
func (s *Session) Close() {}

// Stats returns the session counters.
func (s *Session) Stats() SessionStats { return SessionStats{} }
