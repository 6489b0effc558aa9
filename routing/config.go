package routing

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cq12345/hotline/telemetry"
)

// Strategies of a queue: which free agent gets the next call.
const (
	// LongestIdle rings the agent idle longest (the default; FreeSWITCH
	// mod_callcenter "longest-idle-agent", app_queue "leastrecent").
	LongestIdle = "longest-idle"
	// RoundRobin rings agents in turn by id, remembering where it stopped
	// (app_queue "rrmemory").
	RoundRobin = "round-robin"
	// FewestCalls rings the agent who answered the fewest calls.
	FewestCalls = "fewest-calls"
)

// Overflow actions of a queue when a caller waited MaxWait.
const (
	// OverflowFlow hands the caller back to the flow's on_fail (the
	// default flow offers a callback, then a message).
	OverflowFlow = "flow"
	// OverflowCallback books a callback task at once, tells the caller and
	// hangs up.
	OverflowCallback = "callback"
	// OverflowMessage hands the caller back to the flow's on_fail with the
	// reason "overflow: message" (the flow records the message).
	OverflowMessage = "message"
	// OverflowQueue moves the caller to another queue (Queue.OverflowTo),
	// keeping the time it joined, so it is not sent to the back.
	OverflowQueue = "queue"
)

// Queue is one 12345 agent queue.
type Queue struct {
	ID    string            `yaml:"id" json:"id"`
	Names map[string]string `yaml:"names,omitempty" json:"names,omitempty"`
	// Skills an agent needs (all of them) to take this queue's calls.
	Skills Skills `yaml:"skills,omitempty" json:"skills,omitempty"`
	// Priority: a free agent serving several queues takes the waiting call
	// of the highest priority first, the oldest first among equals.
	Priority int `yaml:"priority,omitempty" json:"priority,omitempty"`
	// Strategy is LongestIdle (default), RoundRobin or FewestCalls.
	Strategy string `yaml:"strategy,omitempty" json:"strategy"`
	// RingTimeout is how long an agent's phone rings before the call goes
	// back to its place in the queue (default 15 s).
	RingTimeout time.Duration `yaml:"ring_timeout,omitempty" json:"ring_timeout"`
	// WrapUp is the after-call work time an agent gets (default 10 s).
	WrapUp time.Duration `yaml:"wrap_up,omitempty" json:"wrap_up"`
	// MaxWait is the longest a caller waits before the overflow action
	// (default 5 min; negative: no limit).
	MaxWait time.Duration `yaml:"max_wait,omitempty" json:"max_wait"`
	// Overflow is the action at MaxWait (default OverflowFlow).
	Overflow   string `yaml:"overflow,omitempty" json:"overflow"`
	OverflowTo string `yaml:"overflow_to,omitempty" json:"overflow_to,omitempty"`
	// AnnounceFirst is when the first position/wait announcement comes
	// after joining (default 2 s); AnnounceEvery repeats it (default 30 s).
	AnnounceFirst time.Duration `yaml:"announce_first,omitempty" json:"announce_first"`
	AnnounceEvery time.Duration `yaml:"announce_every,omitempty" json:"announce_every"`
	// MaxMisses is how many calls in a row an agent may leave ringing
	// before being paused "no-answer" (default 2).
	MaxMisses int `yaml:"max_misses,omitempty" json:"max_misses"`
}

// Config is the routing part of hotlined's configuration: the destinations
// calls may be transferred to and the agent queues. Agents are not here:
// they are accounts in the store, managed through the API.
type Config struct {
	Destinations []Destination `yaml:"destinations"`
	Queues       []Queue       `yaml:"queues"`
	// CallbackTrunk is the SIP URI callbacks to citizens go out through
	// ("" leaves the choice to the plane).
	CallbackTrunk string `yaml:"callback_trunk,omitempty"`
}

// DefaultConfig is the real destinations of the Chongqing hotline (no
// trunks: site-specific) and the default flow's queues.
func DefaultConfig() *Config {
	c := &Config{Destinations: DefaultDestinations()}
	for _, id := range DefaultQueues() {
		c.Queues = append(c.Queues, Queue{ID: id})
	}
	c.applyDefaults()
	return c
}

// LoadConfig reads a routing configuration file (YAML). A section the file
// leaves out keeps its default (DefaultConfig), so a test can name only the
// destinations it points at its own lines. The result is validated.
func LoadConfig(path string, calendars interface{ Has(string) bool }) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing config: %w", err)
	}
	return ParseConfig(b, calendars)
}

// ParseConfig parses and validates a routing configuration (see LoadConfig).
func ParseConfig(b []byte, calendars interface{ Has(string) bool }) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("routing config: %w", err)
	}
	def := DefaultConfig()
	if c.Destinations == nil {
		c.Destinations = def.Destinations
	}
	if c.Queues == nil {
		c.Queues = def.Queues
	}
	c.applyDefaults()
	if err := c.Validate(calendars); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	for i := range c.Queues {
		q := &c.Queues[i]
		if q.Strategy == "" {
			q.Strategy = LongestIdle
		}
		if q.RingTimeout == 0 {
			q.RingTimeout = 15 * time.Second
		}
		if q.WrapUp == 0 {
			q.WrapUp = 10 * time.Second
		}
		if q.MaxWait == 0 {
			q.MaxWait = 5 * time.Minute
		}
		if q.Overflow == "" {
			q.Overflow = OverflowFlow
		}
		if q.AnnounceFirst == 0 {
			q.AnnounceFirst = 2 * time.Second
		}
		if q.AnnounceEvery == 0 {
			q.AnnounceEvery = 30 * time.Second
		}
		if q.MaxMisses == 0 {
			q.MaxMisses = 2
		}
	}
}

// Validate checks the configuration: unique ids, numbers made of digits,
// trunks that are SIP URIs, known calendars (when calendars is not nil),
// fallbacks and overflow targets that are queues, known strategies. It
// reports every problem at once.
func (c *Config) Validate(calendars interface{ Has(string) bool }) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	queues := map[string]bool{}
	for i, q := range c.Queues {
		switch {
		case !validID(q.ID):
			bad("queues[%d]: id %q: want letters, digits, '-' or '_'", i, q.ID)
		case queues[q.ID]:
			bad("queues[%d]: id %q twice", i, q.ID)
		}
		queues[q.ID] = true
	}
	for i, q := range c.Queues {
		if !slices.Contains([]string{LongestIdle, RoundRobin, FewestCalls}, q.Strategy) {
			bad("queue %s: strategy %q: want %s, %s or %s", q.ID, q.Strategy, LongestIdle, RoundRobin, FewestCalls)
		}
		if q.RingTimeout < 0 || q.WrapUp < 0 || q.AnnounceEvery < 0 || q.AnnounceFirst < 0 || q.MaxMisses < 0 {
			bad("queue %s: negative duration or count", q.ID)
		}
		switch q.Overflow {
		case OverflowFlow, OverflowCallback, OverflowMessage:
			if q.OverflowTo != "" {
				bad("queue %s: overflow_to only goes with overflow: queue", q.ID)
			}
		case OverflowQueue:
			if !queues[q.OverflowTo] || q.OverflowTo == q.ID {
				bad("queue %s: overflow_to %q is not another configured queue", q.ID, q.OverflowTo)
			}
		default:
			bad("queue %s: overflow %q: want flow, callback, message or queue", q.ID, q.Overflow)
		}
		_ = i
	}
	seen := map[string]bool{}
	for i, d := range c.Destinations {
		where := fmt.Sprintf("destinations[%d] (%s)", i, d.ID)
		if !validID(d.ID) {
			bad("%s: id: want letters, digits, '-' or '_'", where)
		} else if seen[d.ID] {
			bad("%s: id twice", where)
		}
		seen[d.ID] = true
		if d.Number == "" || strings.Trim(d.Number, "0123456789") != "" {
			bad("%s: number %q: want digits only", where, d.Number)
		}
		if d.Names["zh-CN"] == "" {
			bad("%s: names: zh-CN is required", where)
		}
		if d.Trunk != "" {
			u, err := url.Parse(d.Trunk)
			if err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Opaque == "" {
				bad("%s: trunk %q: want a sip: or sips: URI", where, d.Trunk)
			}
		}
		if d.Calendar != "" && calendars != nil && !calendars.Has(d.Calendar) {
			bad("%s: calendar %q is not defined", where, d.Calendar)
		}
		if d.MaxCalls < 0 {
			bad("%s: max_calls is negative", where)
		}
		if d.Fallback != "" && !queues[d.Fallback] {
			bad("%s: fallback %q is not a configured queue", where, d.Fallback)
		}
	}
	if c.CallbackTrunk != "" {
		if u, err := url.Parse(c.CallbackTrunk); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") {
			bad("callback_trunk %q: want a sip: or sips: URI", c.CallbackTrunk)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("routing config: %w", errors.Join(errs...))
	}
	return nil
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Directory answers which destinations exist. It is the toll-fraud guard: a
// call can only ever be sent to a destination it knows, by id; anything else
// (a raw number, an unknown id from a flow, a REFER or an API call) is
// refused and logged.
type Directory struct {
	byID  map[string]Destination
	order []string
	log   *slog.Logger
}

// NewDirectory indexes the destinations (already validated).
func NewDirectory(ds []Destination, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	d := &Directory{byID: map[string]Destination{}, log: log}
	for _, x := range ds {
		d.byID[x.ID] = x
		d.order = append(d.order, x.ID)
	}
	return d
}

// Allowed returns the destination with this id. Anything else is refused
// and logged as a possible toll-fraud attempt; source says who asked
// ("flow chongqing-12345 node to-12315", "refer", "api").
func (d *Directory) Allowed(id, source string) (Destination, bool) {
	x, ok := d.byID[id]
	if !ok {
		d.log.Warn("routing: refused: not a configured destination (toll-fraud guard)",
			"destination", telemetry.Scrub(truncate(id, 40)), "source", source)
	}
	return x, ok
}

// List returns the destinations in configuration order.
func (d *Directory) List() []Destination {
	out := make([]Destination, 0, len(d.order))
	for _, id := range d.order {
		out = append(out, d.byID[id])
	}
	return out
}

// IDs is the set a flow's transfer nodes may name (ivr.Env.Destinations).
func (d *Directory) IDs() map[string]bool {
	m := make(map[string]bool, len(d.byID))
	for id := range d.byID {
		m[id] = true
	}
	return m
}

// truncate keeps an attacker's string from flooding the log; it may be a
// number, so the masking log handler still sees it whole digits-wise.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
