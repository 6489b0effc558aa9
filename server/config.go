// Package server wires hotlined together: configuration, the data store,
// telemetry, the media plane, the IVR and the HTTP API. cmd/hotlined only
// parses the configuration and calls Run.
package server

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// Config is hotlined's configuration. Every field is a flag; each flag can
// also come from the environment (HOTLINE_<FLAG NAME>, upper case, "-" as
// "_") or from the YAML config file (--config; keys are the flag names).
// Flags win over the environment, the environment over the file.
type Config struct {
	Config string `help:"YAML configuration file (keys are flag names)." type:"path" placeholder:"FILE"`

	SIPListen     string        `name:"sip-listen" default:"127.0.0.1:5060" help:"SIP address (UDP and TCP)."`
	HTTPListen    string        `name:"http-listen" default:"127.0.0.1:8080" help:"HTTP address: API, UI, /metrics, /healthz."`
	DataDir       string        `name:"data-dir" default:"./var" type:"path" help:"Data folder: SQLite store, journal, keys, admin token."`
	Flow          string        `name:"flow" help:"IVR flow file seeded as the first published version (default: the embedded Chongqing 12345 flow)." type:"path"`
	MediaAddr     netip.Addr    `name:"media-addr" help:"Address written in SDP (default: the SIP listen address)."`
	RTPPorts      string        `name:"rtp-ports" default:"" help:"RTP port range for the socket pool, e.g. 20000-20063 (default: ports chosen by the system)."`
	RTPSockets    int           `name:"rtp-sockets" default:"64" help:"Shared RTP sockets in the pool (calls are demultiplexed by remote address)."`
	RTPTimeout    time.Duration `name:"rtp-timeout" default:"30s" help:"Hang up a call that sent no RTP for this long (0 disables)."`
	RingTime      time.Duration `name:"ring-time" default:"0s" help:"Let calls ring (180 Ringing) this long before answering."`
	DrainGrace    time.Duration `name:"drain-grace" default:"30s" help:"On SIGTERM: how long calls in progress may go on before they get a BYE."`
	Trunk         string        `name:"trunk" help:"Default SIP trunk URI for outbound calls (destinations without their own trunk, callbacks), e.g. sip:gw.example:5060."`
	TrunkUser     string        `name:"trunk-user" help:"User name for a trunk's digest challenge (401/407) to hotline's INVITEs (plane sip)."`
	TrunkPassword string        `name:"trunk-password" help:"Password for a trunk's digest challenge (plane sip); prefer HOTLINE_TRUNK_PASSWORD to the command line."`
	RoutingConfig string        `name:"routing-config" type:"path" help:"Routing file: destinations (with their trunks) and agent queues (default: the real Chongqing lines, no trunks)."`
	Store         string        `name:"store" help:"Data store: a PostgreSQL URL (postgres://…) or a SQLite file (default: <data-dir>/hotline.db)."`

	AbusePolicy string `name:"abuse-policy" type:"path" help:"Article-26 policy file (default: the embedded conservative policy; check one with hotlinectl abuse policy validate)."`

	Plane       string `name:"plane" default:"sip" enum:"sip,ari" help:"Media plane: sip (embedded) or ari (Asterisk)."`
	ARIURL      string `name:"ari-url" default:"http://127.0.0.1:8088" help:"Asterisk ARI base URL (plane ari)."`
	ARIUser     string `name:"ari-user" default:"hotline" help:"ARI user (plane ari)."`
	ARIPassword string `name:"ari-password" help:"ARI password (plane ari)."`
	ARIApp      string `name:"ari-app" default:"hotline" help:"Stasis application name (plane ari)."`
	// The ari plane dials agents and lines through Asterisk.
	ARIAgentEndpoint string `name:"ari-agent-endpoint" default:"PJSIP/{ext}" help:"Dial string of an agent's phone, {ext} replaced by the agent's extension (plane ari)."`
	ARITrunkEndpoint string `name:"ari-trunk-endpoint" default:"trunk" help:"PJSIP endpoint outbound calls to destinations and callbacks use; the INVITE goes to the destination's trunk URI (plane ari)."`

	LogLevel  string `name:"log-level" default:"info" enum:"debug,info,warn,error" help:"Log level."`
	LogFormat string `name:"log-format" default:"text" enum:"text,json" help:"Log format."`
	TraceFile string `name:"trace-file" type:"path" help:"Write finished spans as JSON lines to this file."`
	OTLP      string `name:"otlp-endpoint" help:"OTLP/HTTP collector host:port for traces."`
}

// Parse reads the configuration from args, the environment and the config
// file, in that order of precedence.
func Parse(name string, args []string, environ []string) (*Config, *kong.Kong, error) {
	var c Config
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "HOTLINE_") {
			env[k] = v
		}
	}
	// The config file path itself may come from the environment.
	cfgPath := env["HOTLINE_CONFIG"]
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath = v
		}
	}
	file := map[string]any{}
	if cfgPath != "" {
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, nil, fmt.Errorf("config %s: %w", cfgPath, err)
		}
	}
	p, err := kong.New(&c, kong.Name(name),
		kong.Description("hotline: IVR and call routing for the Chongqing 12345 hotline."),
		kong.Resolvers(envThenFile(env, file)),
		kong.Writers(os.Stdout, os.Stderr))
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.Parse(args); err != nil {
		return nil, p, err
	}
	for k := range file {
		if p.Model.Node.Flags == nil || !hasFlag(p, k) {
			return nil, p, fmt.Errorf("config %s: unknown key %q", cfgPath, k)
		}
	}
	return &c, p, nil
}

func hasFlag(p *kong.Kong, name string) bool {
	for _, f := range p.Model.Node.Flags {
		if f.Name == name {
			return true
		}
	}
	return false
}

// envThenFile resolves a flag the command line did not set: first from
// HOTLINE_<NAME>, then from the config file.
func envThenFile(env map[string]string, file map[string]any) kong.Resolver {
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
		key := "HOTLINE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := env[key]; ok {
			return v, nil
		}
		if v, ok := file[f.Name]; ok {
			return fmt.Sprint(v), nil
		}
		return nil, nil
	})
}
