// Command callsim is hotline's SIP test phone and load generator, on sipgo
// and the media engine (the work is done by package phone; this command
// parses flags and prints).
//
//	callsim call  --target 127.0.0.1:5060 --to 12345 --from 13800138000 \
//	              --dtmf 1 --dtmf-on zh-CN/main-menu --dtmf-after 1s --hangup-after 30s --json
//	callsim load  --target 127.0.0.1:5060 --calls 2000 --rate 500 --hold 30s --json
//	callsim line  --listen 127.0.0.1:5070 --number 12315 --play en/digit-5 --json
//	callsim agent --target 127.0.0.1:5060 --user 1001 --password … --answer-after 2s --talk 20s --json
//
// call prints one JSON object (schema: phone/report.schema.json) and exits
// 1 when an expectation fails: by default the call must be answered (or,
// with --cancel-after, cancelled); --expect-status and --expect-prompt
// (repeatable, in order) add to that. load prints one JSON object (schema:
// phone/load.schema.json) and exits 1 when a setup failed; on a terminal it
// shows a live progress line on stderr. line and agent print one report
// per call (JSON lines with --json) until interrupted or --calls calls have
// ended. Every role sends a tone (--tone-hz, default 400 Hz) and can count
// the frames of given frequencies it receives (--detect-tone, reported as
// tones_received): with a different tone per party, a bridge or a
// three-party call shows whose audio reaches whom. Exit status 2 is a
// usage error. Caller numbers are masked
// everywhere, the JSON included.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/telemetry"
	"github.com/emiago/sipgo/sip"
	"github.com/mattn/go-isatty"
)

type cli struct {
	Verbose    bool     `help:"Log SIP and media debug messages to stderr (caller numbers masked)."`
	CPUProfile string   `name:"cpuprofile" type:"path" help:"Write a CPU profile (go tool pprof) of callsim to this file."`
	Call       callCmd  `cmd:"" help:"Place one call and report what was heard (exit 1 when an expectation fails)."`
	Load       loadCmd  `cmd:"" help:"Place many concurrent calls and report setup, RTP and DTMF figures (exit 1 when a setup failed)."`
	Line       lineCmd  `cmd:"" help:"Answer calls as a specialised line (e.g. 12315); one report per call."`
	Agent      agentCmd `cmd:"" help:"Register as an agent's phone (digest auth) and answer calls; one report per call."`
}

// dialFlags are shared by call and load.
type dialFlags struct {
	Target       string        `default:"127.0.0.1:5060" help:"Far end, HOST:PORT."`
	Transport    string        `enum:"udp,tcp" default:"udp" help:"SIP transport (udp, tcp)."`
	To           string        `default:"12345" help:"Dialled number."`
	From         string        `default:"13800138000" help:"Caller number (masked in all output)."`
	Codec        []string      `default:"PCMA,PCMU" help:"Codecs to offer, in order (PCMA, PCMU)."`
	NoSDP        bool          `name:"no-sdp" help:"Send the INVITE without SDP (late offer)."`
	SetupTimeout time.Duration `default:"32s" help:"Give up (CANCEL) when not answered in this time."`
	Send         string        `enum:"tone,silence" default:"tone" help:"What to send for the whole call: a tone (--tone-hz) or silence (tone, silence)."`
	ToneHz       float64       `name:"tone-hz" default:"400" help:"Frequency of the tone sent, Hz (a multiple of 50, 100-3500), so that the other parties of a bridge can tell it apart."`
	DetectTone   []float64     `name:"detect-tone" help:"Frequencies (Hz, multiples of 50) to watch for in the received audio, repeatable or comma-separated: the report counts the frames that carried each (tones_received)."`
	PromptsDir   string        `help:"Prompt directory (catalogue.yaml, audio/) to recognise; default: the prompts built into callsim."`
	SIPListen    string        `default:"127.0.0.1:0" help:"Local SIP address (UDP and TCP)."`
	MediaIP      string        `help:"Local RTP address (default: the SIP listen IP)."`

	DTMF         []string      `name:"dtmf" help:"Digits to send, repeatable or a sequence (1,3 or 13)."`
	DTMFMode     string        `name:"dtmf-mode" enum:"rfc4733,info" default:"rfc4733" help:"How to send digits (rfc4733, info)."`
	DTMFAfter    time.Duration `name:"dtmf-after" default:"3s" help:"First digit this long after the first prompt started (or the answer, or --dtmf-on); each next this long after the previous."`
	DTMFDuration time.Duration `name:"dtmf-duration" default:"160ms" help:"RFC 4733 event duration."`
	DTMFOn       string        `name:"dtmf-on" help:"Anchor the first digit on the start of this prompt (e.g. zh-CN/main-menu) instead of the first prompt."`
	JSON         bool          `name:"json" help:"Print one JSON object on stdout."`
}

type callCmd struct {
	dialFlags
	Play         []string      `help:"Prompt keys to play once answered, before --send (repeatable)."`
	HangupAfter  time.Duration `default:"20s" help:"Send BYE this long after the answer (0: wait for the far end)."`
	CancelAfter  time.Duration `help:"Send CANCEL when not answered this long after the INVITE."`
	HoldAfter    time.Duration `help:"Put the far end on hold (re-INVITE, sendonly) this long after the answer."`
	HoldFor      time.Duration `help:"Take it off hold (re-INVITE, sendrecv) this long later (0: stay on hold)."`
	ExpectStatus int           `help:"Expected final SIP status (default: answered, or cancelled with --cancel-after)."`
	ExpectPrompt []string      `help:"Prompt keys that must be heard, in this order (repeatable)."`
}

type loadCmd struct {
	dialFlags
	Calls        int           `default:"100" help:"Number of calls."`
	Rate         float64       `default:"50" help:"Calls started per second."`
	Hold         time.Duration `default:"30s" help:"How long each call is held after its answer."`
	MediaSockets int           `default:"32" help:"RTP sockets in callsim's pool."`
	FromStep     int64         `default:"1" help:"Call i comes from --from + i*step (0: all from --from), so that per-caller limits do not trip."`
}

func main() {
	var c cli
	k := kong.Parse(&c, kong.Name("callsim"), kong.Description("hotline's SIP test phone and load generator."), kong.UsageOnError())
	level := slog.LevelWarn
	if c.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(telemetry.NewMaskingHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	sipLevel := slog.LevelError // sipgo warns about harmless things (TCP reference counts)
	if c.Verbose {
		sipLevel = slog.LevelDebug
	}
	sipLog := slog.New(telemetry.NewMaskingHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: sipLevel})))
	sip.SetDefaultLogger(sipLog) // sipgo logs some things through its package logger
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if c.CPUProfile != "" {
		f, perr := os.Create(c.CPUProfile)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "callsim:", perr)
			os.Exit(2)
		}
		if perr := pprof.StartCPUProfile(f); perr != nil {
			fmt.Fprintln(os.Stderr, "callsim:", perr)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	switch k.Command() {
	case "call":
		err = c.Call.run(ctx, log, sipLog, os.Stdout)
	case "load":
		err = c.Load.run(ctx, log, sipLog, os.Stdout, os.Stderr)
	case "line":
		err = c.Line.run(ctx, log, sipLog, os.Stdout, nil)
	case "agent":
		err = c.Agent.run(ctx, log, sipLog, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "callsim:", telemetry.Scrub(err.Error()))
		code := 1
		if errors.Is(err, errUsage) {
			code = 2
		}
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}

var errUsage = errors.New("usage")

func (f *dialFlags) options() (phone.DialOptions, []byte, error) {
	o := phone.DialOptions{Target: f.Target, Transport: f.Transport, To: f.To, From: f.From, LateOffer: f.NoSDP, SetupTimeout: f.SetupTimeout}
	for _, s := range f.Codec {
		c, err := phone.ParseCodec(s)
		if err != nil {
			return o, nil, fmt.Errorf("%w: --codec: %v", errUsage, err)
		}
		o.Codecs = append(o.Codecs, c)
	}
	var digits []byte
	for _, s := range f.DTMF {
		for _, d := range []byte(strings.ToUpper(s)) {
			if d == ',' || d == ' ' {
				continue
			}
			if !strings.ContainsRune("0123456789*#ABCD", rune(d)) {
				return o, nil, fmt.Errorf("%w: --dtmf: %q is not a DTMF digit", errUsage, d)
			}
			digits = append(digits, d)
		}
	}
	return o, digits, nil
}

func (f *dialFlags) newPhone(log, sipLog *slog.Logger, sockets int) (*phone.Phone, error) {
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
	cfg := phone.Config{SIPAddr: f.SIPListen, Prompts: lib, Logger: log, SIPLogger: sipLog, MediaSockets: sockets}
	if f.MediaIP != "" {
		if cfg.MediaIP, err = netip.ParseAddr(f.MediaIP); err != nil {
			return nil, fmt.Errorf("%w: --media-ip: %v", errUsage, err)
		}
	}
	return phone.New(cfg)
}

func (f *dialFlags) send() func(prompts.Codec) []byte {
	if f.Send == "silence" {
		return phone.SilenceFrame
	}
	hz := f.ToneHz
	if hz == 0 {
		hz = 400
	}
	return func(c prompts.Codec) []byte { return phone.ToneFrame(c, hz, 4000) }
}

// checkTones validates --tone-hz and --detect-tone: multiples of 50 Hz
// loop without a click and fall on a bin of a 20 ms frame. send 0 is the
// default (400 Hz).
func checkTones(send float64, detect []float64) error {
	if send == 0 {
		send = 400
	}
	for _, hz := range append([]float64{send}, detect...) {
		if hz < 100 || hz > 3500 || math.Mod(hz, 50) != 0 {
			return fmt.Errorf("%w: tone %v Hz: want a multiple of 50 between 100 and 3500", errUsage, hz)
		}
	}
	return nil
}

func (c *callCmd) run(ctx context.Context, log, sipLog *slog.Logger, stdout io.Writer) error {
	o, digits, err := c.options()
	if err != nil {
		return err
	}
	if err := checkTones(c.ToneHz, c.DetectTone); err != nil {
		return err
	}
	o.CancelAfter = c.CancelAfter
	p, err := c.newPhone(log, sipLog, 1)
	if err != nil {
		return err
	}
	defer p.Close()
	r := p.Run(ctx, o, phone.Script{
		Digits: digits, DTMFMode: c.DTMFMode, DTMFAfter: c.DTMFAfter, DTMFDuration: c.DTMFDuration,
		DTMFAnchor: c.DTMFOn, HangupAfter: c.HangupAfter, Send: c.send(), Play: c.Play,
		HoldAfter: c.HoldAfter, HoldFor: c.HoldFor, DetectTones: c.DetectTone,
	})
	if c.JSON {
		err = json.NewEncoder(stdout).Encode(r)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	return r.Check(c.ExpectStatus, c.CancelAfter > 0, c.ExpectPrompt)
}

func (c *loadCmd) run(ctx context.Context, log, sipLog *slog.Logger, stdout, stderr *os.File) error {
	o, digits, err := c.options()
	if err != nil {
		return err
	}
	if c.Calls <= 0 || c.Rate <= 0 {
		return fmt.Errorf("%w: --calls and --rate must be positive", errUsage)
	}
	p, err := c.newPhone(log, sipLog, c.MediaSockets)
	if err != nil {
		return err
	}
	defer p.Close()
	var progress func(phone.LoadProgress)
	tty := isatty.IsTerminal(stderr.Fd())
	if tty {
		progress = func(lp phone.LoadProgress) {
			fmt.Fprintf(stderr, "\r\x1b[Kcalls up %d, started %d/%d, failed %d, ended %d, elapsed %.1fs",
				lp.Up, lp.Started, c.Calls, lp.Failed, lp.Ended, lp.Elapsed.Seconds())
		}
	}
	cfg := phone.LoadConfig{Dial: o, FromStep: c.FromStep, Calls: c.Calls, Rate: c.Rate, Hold: c.Hold, Digits: digits,
		DTMFMode: c.DTMFMode, DTMFAfter: c.DTMFAfter, DTMFAnchor: c.DTMFOn, Send: c.send()}
	r := p.Load(ctx, cfg, progress)
	if tty {
		fmt.Fprintln(stderr)
	}
	if c.JSON {
		err = json.NewEncoder(stdout).Encode(r)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if r.SetupsFailed > 0 {
		return fmt.Errorf("%d of %d setups failed", r.SetupsFailed, c.Calls)
	}
	return nil
}
