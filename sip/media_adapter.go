package sip

import (
	"time"

	"github.com/cq12345/hotline/media"
)

// MediaEngine is the RTP engine the plane uses.
type MediaEngine = *media.Engine

// engineAdapter narrows *media.Engine to what a call needs, so the call
// logic depends on a small interface (and tests could swap it).
type engineAdapter struct{ e *media.Engine }

func (a engineAdapter) newSession(p sessionParams) (mediaSession, error) {
	s, err := a.e.NewSession(media.SessionConfig{
		Remote:          p.Remote,
		PayloadType:     p.PayloadType,
		DTMFPayloadType: p.DTMFType,
		OnDigit:         p.OnDigit,
		OnInactive:      p.OnInactive,
	})
	if err != nil {
		return nil, err
	}
	return sessionAdapter{s}, nil
}

type sessionAdapter struct{ *media.Session }

func (s sessionAdapter) Play(frames [][]byte, onDone func(bool)) {
	s.Session.Play(frames, media.PlayOptions{OnDone: onDone})
}

func (s sessionAdapter) lastArrival() time.Time { return s.Session.Stats().LastArrival }
