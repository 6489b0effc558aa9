package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/prompts"
)

// answerFlags are shared by line and agent.
type answerFlags struct {
	Listen     string        `default:"127.0.0.1:5070" help:"Local SIP address (UDP and TCP) to answer on."`
	MediaIP    string        `help:"Local RTP address (default: the listen IP)."`
	RingFor    time.Duration `name:"answer-after" default:"0s" help:"Ring (180) this long before answering."`
	NoAnswer   bool          `help:"Ring until the caller gives up."`
	EarlyMedia float64       `name:"early-media-hz" help:"While ringing (--answer-after, --no-answer), send 183 Session Progress with SDP and a tone of this frequency (Hz, a multiple of 50): early media, as a carrier's ringback."`
	Busy       bool          `help:"Answer every call with 486 Busy Here."`
	MaxCalls   int           `help:"Answer 486 beyond this many calls in progress (0: no limit)."`
	Codec      []string      `default:"PCMA,PCMU" help:"Codecs accepted, in preference order."`
	Talk       time.Duration `default:"0s" help:"Hang up this long after answering (0: wait for the caller)."`
	Play       []string      `help:"Prompt keys to play once answered, before --send (repeatable)."`
	Send       string        `enum:"tone,silence" default:"tone" help:"What to send after --play (tone, silence)."`
	ToneHz     float64       `name:"tone-hz" default:"400" help:"Frequency of the tone sent, Hz (a multiple of 50, 100-3500), so that the other parties of a bridge can tell it apart."`
	DetectTone []float64     `name:"detect-tone" help:"Frequencies (Hz, multiples of 50) to watch for in the received audio, repeatable or comma-separated: each report counts the frames that carried each (tones_received)."`
	DTMF       []string      `name:"dtmf" help:"Digits to send once answered (as call does)."`
	DTMFMode   string        `name:"dtmf-mode" enum:"rfc4733,info" default:"rfc4733" help:"How to send digits (rfc4733, info)."`
	DTMFAfter  time.Duration `name:"dtmf-after" default:"1s" help:"Delay before each digit."`
	DTMFGap    time.Duration `name:"dtmf-gap" help:"Delay between digits after the first (default: --dtmf-after), e.g. 300ms to key *7."`
	PromptsDir string        `help:"Prompt directory to play and recognise; default: the prompts built into callsim."`
	Calls      int           `help:"Exit after this many calls ended (0: run until interrupted)."`
	JSON       bool          `name:"json" help:"Print one JSON object per call (one per line)."`
}

type lineCmd struct {
	answerFlags
	Number       []string `required:"" help:"Numbers this line answers (the dialled user part, e.g. 12315); others get 404."`
	AuthUser     string   `name:"auth-user" help:"Act as a trunk that authenticates: INVITEs need digest credentials for this user (407 challenge, 403 when wrong)."`
	AuthPassword string   `name:"auth-password" env:"CALLSIM_AUTH_PASSWORD" help:"Password for --auth-user."`
}

type agentCmd struct {
	answerFlags
	Target    string        `required:"" help:"Registrar (hotlined), HOST:PORT."`
	Transport string        `enum:"udp,tcp" default:"udp" help:"Transport for REGISTER (udp, tcp)."`
	User      string        `required:"" help:"Agent extension (SIP user)."`
	Password  string        `env:"CALLSIM_PASSWORD" help:"SIP password (or CALLSIM_PASSWORD)."`
	Domain    string        `help:"Address-of-record domain (default: the registrar's host)."`
	Expires   time.Duration `default:"300s" help:"Registration expiry requested."`
}

func (f *answerFlags) newPhone(log, sipLog *slog.Logger) (*phone.Phone, error) {
	var lib *prompts.Library
	var err error
	if f.PromptsDir != "" {
		lib, err = prompts.Load(os.DirFS(f.PromptsDir))
	} else {
		lib, err = prompts.Load(prompts.Embedded())
	}
	if err != nil {
		return nil, err
	}
	cfg := phone.Config{SIPAddr: f.Listen, Prompts: lib, Logger: log, SIPLogger: sipLog, MediaSockets: 4}
	if f.MediaIP != "" {
		if cfg.MediaIP, err = netip.ParseAddr(f.MediaIP); err != nil {
			return nil, fmt.Errorf("%w: --media-ip: %v", errUsage, err)
		}
	}
	return phone.New(cfg)
}

// serve answers calls until ctx is done or --calls calls have ended,
// printing one report per call.
func (f *answerFlags) serve(ctx context.Context, p *phone.Phone, numbers []string, stdout io.Writer, more ...func(*phone.AnswerConfig)) error {
	df := dialFlags{Codec: f.Codec, DTMF: f.DTMF, Send: f.Send, ToneHz: f.ToneHz}
	o, digits, err := df.options()
	if err != nil {
		return err
	}
	if err := checkTones(f.ToneHz, f.DetectTone); err != nil {
		return err
	}
	if f.EarlyMedia != 0 {
		if err := checkTones(f.EarlyMedia, nil); err != nil {
			return fmt.Errorf("--early-media-hz: %w", err)
		}
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	ended := 0
	cfg := phone.AnswerConfig{
		Numbers: numbers, RingFor: f.RingFor, NoAnswer: f.NoAnswer, EarlyMediaHz: f.EarlyMedia, Busy: f.Busy, MaxCalls: f.MaxCalls, Codecs: o.Codecs,
		Script: phone.Script{Play: f.Play, Send: df.send(), HangupAfter: f.Talk, Digits: digits, DTMFMode: f.DTMFMode, DTMFAfter: f.DTMFAfter, DTMFGap: f.DTMFGap,
			DetectTones: f.DetectTone},
		OnReport: func(r phone.Report) {
			mu.Lock()
			defer mu.Unlock()
			if f.JSON {
				_ = json.NewEncoder(stdout).Encode(r)
			} else {
				_ = r.WriteText(stdout)
			}
			ended++
			if f.Calls > 0 && ended >= f.Calls {
				stop()
			}
		},
	}
	for _, m := range more {
		m(&cfg)
	}
	return p.Answer(ctx, cfg)
}

func (c *lineCmd) run(ctx context.Context, log, sipLog *slog.Logger, stdout io.Writer, ready chan<- netip.AddrPort) error {
	p, err := c.newPhone(log, sipLog)
	if err != nil {
		return err
	}
	defer p.Close()
	log.Info("callsim line answering", "numbers", c.Number, "sip", p.SIPAddr("udp"))
	if ready != nil {
		ready <- p.SIPAddr("udp")
	}
	if c.AuthUser != "" && c.AuthPassword == "" {
		return fmt.Errorf("%w: --auth-user needs --auth-password (or CALLSIM_AUTH_PASSWORD)", errUsage)
	}
	return c.serve(ctx, p, c.Number, stdout, func(a *phone.AnswerConfig) { a.AuthUser, a.AuthPassword = c.AuthUser, c.AuthPassword })
}

func (c *agentCmd) run(ctx context.Context, log, sipLog *slog.Logger, stdout io.Writer) error {
	p, err := c.newPhone(log, sipLog)
	if err != nil {
		return err
	}
	defer p.Close()
	reg, err := p.Register(ctx, phone.RegisterConfig{Registrar: c.Target, Transport: c.Transport, User: c.User, Password: c.Password, Domain: c.Domain, Expires: c.Expires})
	if err != nil {
		return err
	}
	log.Info("callsim agent registered", "user", c.User, "granted", reg.Granted())
	serr := c.serve(ctx, p, nil, stdout)
	if err := reg.Close(); err != nil {
		log.Warn("callsim agent: unregister", "error", err)
	}
	return serr
}
