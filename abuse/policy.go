package abuse

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed policy.default.yaml
var defaultPolicy []byte

// DefaultPolicyYAML returns the embedded default policy file (documented,
// conservative).
func DefaultPolicyYAML() []byte { return slices.Clone(defaultPolicy) }

// DefaultPolicy returns the embedded default policy.
func DefaultPolicy() *Policy {
	p, err := ParsePolicy(defaultPolicy)
	if err != nil {
		panic("abuse: embedded default policy is invalid: " + err.Error())
	}
	return p
}

// Measure is what happens to a caller's calls, in increasing severity.
type Measure int

const (
	None       Measure = iota
	Warning            // the caller hears article 26, the call goes on
	Restricted         // supervisor queue, a maximum call duration with a notice
	Blocked            // a notice (why, how long, appeal, 110/119/120), then the call ends
)

var measureNames = []string{"none", "warning", "restricted", "blocked"}

func (m Measure) String() string {
	if m < 0 || int(m) >= len(measureNames) {
		return fmt.Sprintf("measure(%d)", int(m))
	}
	return measureNames[m]
}

// ParseMeasure reads "warning", "restricted" or "blocked".
func ParseMeasure(s string) (Measure, bool) {
	i := slices.Index(measureNames, s)
	return Measure(max(i, 0)), i > 0
}

func (m Measure) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m *Measure) UnmarshalText(b []byte) error {
	v, ok := ParseMeasure(string(b))
	if !ok && string(b) != "none" {
		return fmt.Errorf("unknown measure %q (warning, restricted, blocked)", b)
	}
	*m = v
	return nil
}

// Signal names what a rule counts.
type Signal string

const (
	SignalCalls     Signal = "calls"      // counted calls (not follow-ups, redials, allow-listed)
	SignalLongCalls Signal = "long_calls" // calls past the long-call thresholds
	SignalFlags     Signal = "flags"      // agent flags
)

// Flag kinds an agent gives. Warned is the dissuasion itself (劝阻).
const (
	KindHarassment = "harassment"
	KindInsult     = "insult"
	KindThreat     = "threat"
	KindWarned     = "warned"
)

// FlagKinds are the kinds Flag accepts.
var FlagKinds = []string{KindHarassment, KindInsult, KindThreat, KindWarned}

// Duration is a time.Duration written as "10m", "24h" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 10m, 24h", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Policy is the article-26 policy file.
type Policy struct {
	Version int `yaml:"version" json:"version"`
	Exempt  struct {
		RedialWithin   Duration `yaml:"redial_within" json:"redial_within"`
		RedialMaxInRow int      `yaml:"redial_max_in_row" json:"redial_max_in_row"`
		Allow          []string `yaml:"allow" json:"allow"`
	} `yaml:"exempt" json:"exempt"`
	LongCall struct {
		AgentTalk Duration `yaml:"agent_talk" json:"agent_talk"`
		IVRIdle   Duration `yaml:"ivr_idle" json:"ivr_idle"`
	} `yaml:"long_call" json:"long_call"`
	Rules        []Rule   `yaml:"rules" json:"rules"`
	LadderMemory Duration `yaml:"ladder_memory" json:"ladder_memory"`
	Measures     struct {
		Warning    MeasurePolicy `yaml:"warning" json:"warning"`
		Restricted MeasurePolicy `yaml:"restricted" json:"restricted"`
		Blocked    MeasurePolicy `yaml:"blocked" json:"blocked"`
	} `yaml:"measures" json:"measures"`
}

// Rule is one rule of the policy.
type Rule struct {
	ID          string   `yaml:"id" json:"id"`
	Signal      Signal   `yaml:"signal" json:"signal"`
	Kinds       []string `yaml:"kinds,omitempty" json:"kinds,omitempty"`
	AfterWarned bool     `yaml:"after_warned,omitempty" json:"after_warned,omitempty"`
	Window      Duration `yaml:"window" json:"window"`
	AtLeast     int      `yaml:"at_least" json:"at_least"`
	Measure     Measure  `yaml:"measure" json:"measure"`
	Why         string   `yaml:"why" json:"why"`
	WhyZH       string   `yaml:"why_zh,omitempty" json:"why_zh,omitempty"`
	line        int
}

// MeasurePolicy says how long a measure lasts and how it is applied.
type MeasurePolicy struct {
	Duration Duration `yaml:"duration" json:"duration"`
	MaxCall  Duration `yaml:"max_call,omitempty" json:"max_call,omitempty"`
	Confirm  bool     `yaml:"confirm,omitempty" json:"confirm,omitempty"`
}

// Of returns the policy of measure m.
func (p *Policy) Of(m Measure) MeasurePolicy {
	switch m {
	case Warning:
		return p.Measures.Warning
	case Restricted:
		return p.Measures.Restricted
	case Blocked:
		return p.Measures.Blocked
	}
	return MeasurePolicy{}
}

// MaxRing is the most signals of one kind kept per caller: a rule's
// at_least may not exceed it (it bounds the memory per caller).
const MaxRing = 64

// Problem is one problem of a policy file.
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Message)
	}
	return p.Path + ": " + p.Message
}

// InvalidError lists every problem of a policy.
type InvalidError struct{ Problems []Problem }

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "abuse policy: %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// ParsePolicy reads and validates a policy file. An invalid one gives an
// *InvalidError with every problem found.
func ParsePolicy(src []byte) (*Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps []Problem
			for _, m := range te.Errors {
				ps = append(ps, Problem{Path: "policy", Message: m})
			}
			return nil, &InvalidError{Problems: ps}
		}
		return nil, &InvalidError{Problems: []Problem{{Path: "policy", Message: err.Error()}}}
	}
	// Rule lines, for problems.
	var root yaml.Node
	if yaml.Unmarshal(src, &root) == nil && len(root.Content) > 0 {
		m := root.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "rules" && m.Content[i+1].Kind == yaml.SequenceNode {
				for j, n := range m.Content[i+1].Content {
					if j < len(p.Rules) {
						p.Rules[j].line = n.Line
					}
				}
			}
		}
	}
	if ps := p.Validate(); len(ps) > 0 {
		return nil, &InvalidError{Problems: ps}
	}
	return &p, nil
}

// Validate lists every problem of p.
func (p *Policy) Validate() []Problem {
	var ps []Problem
	add := func(path string, line int, f string, a ...any) {
		ps = append(ps, Problem{Path: path, Line: line, Message: fmt.Sprintf(f, a...)})
	}
	if p.Version != 1 {
		add("version", 0, "must be 1")
	}
	if p.Exempt.RedialWithin < 0 || p.Exempt.RedialWithin.D() > 2*time.Hour {
		add("exempt.redial_within", 0, "must be between 0 and 2h")
	}
	if p.Exempt.RedialMaxInRow < 0 {
		add("exempt.redial_max_in_row", 0, "must not be negative")
	}
	for i, n := range p.Exempt.Allow {
		if len(digits(n)) < 3 {
			add(fmt.Sprintf("exempt.allow[%d]", i), 0, "%q is not a number", n)
		}
	}
	if p.LongCall.AgentTalk.D() < time.Minute {
		add("long_call.agent_talk", 0, "must be at least 1m")
	}
	if p.LongCall.IVRIdle.D() < time.Minute {
		add("long_call.ivr_idle", 0, "must be at least 1m")
	}
	if p.LadderMemory.D() < 24*time.Hour {
		add("ladder_memory", 0, "must be at least 24h")
	}
	if len(p.Rules) == 0 {
		add("rules", 0, "no rules: nothing would ever be detected")
	}
	seen := map[string]bool{}
	for i, r := range p.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if r.ID != "" {
			path = fmt.Sprintf("rules[%d] (%s)", i, r.ID)
		}
		switch {
		case r.ID == "":
			add(path, r.line, "id is required")
		case seen[r.ID]:
			add(path, r.line, "id %q is used twice", r.ID)
		}
		seen[r.ID] = true
		switch r.Signal {
		case SignalCalls, SignalLongCalls:
			if len(r.Kinds) > 0 || r.AfterWarned {
				add(path, r.line, "kinds and after_warned belong to signal flags only")
			}
		case SignalFlags:
			if len(r.Kinds) == 0 {
				add(path, r.line, "kinds: list the flag kinds counted (harassment, insult, threat)")
			}
			for _, k := range r.Kinds {
				if k != KindHarassment && k != KindInsult && k != KindThreat {
					add(path, r.line, "kind %q: want harassment, insult or threat", k)
				}
			}
		default:
			add(path, r.line, "signal %q: want calls, long_calls or flags", r.Signal)
		}
		if r.Window.D() < time.Minute || r.Window.D() > 90*24*time.Hour {
			add(path, r.line, "window %s: must be between 1m and 2160h (90 days)", r.Window.D())
		}
		if r.Window.D() > p.LadderMemory.D() && r.Signal == SignalFlags {
			add(path, r.line, "window %s is longer than ladder_memory %s: flags are kept only that long", r.Window.D(), p.LadderMemory.D())
		}
		if r.AtLeast < 1 || r.AtLeast > MaxRing {
			add(path, r.line, "at_least %d: must be between 1 and %d", r.AtLeast, MaxRing)
		}
		if r.Signal == SignalCalls && r.AtLeast < 3 {
			add(path, r.line, "at_least %d: fewer than 3 calls is never abuse by itself", r.AtLeast)
		}
		if r.Measure == None {
			add(path, r.line, "measure: want warning, restricted or blocked")
		}
		if r.Measure == Blocked && r.Signal != SignalFlags {
			add(path, r.line, "measure blocked: only staff flags may block at once; call counts go up the ladder one step at a time")
		}
		if strings.TrimSpace(r.Why) == "" {
			add(path, r.line, "why: say why, in words a supervisor understands (it is shown with every decision)")
		}
	}
	for _, m := range []Measure{Warning, Restricted, Blocked} {
		mp := p.Of(m)
		path := "measures." + m.String()
		if mp.Duration.D() < time.Minute {
			add(path+".duration", 0, "must be at least 1m: every measure expires, and must last")
		}
		if mp.Duration.D() > 30*24*time.Hour {
			add(path+".duration", 0, "%s: at most 720h (30 days); longer needs a person, not a rule", mp.Duration.D())
		}
		if m == Restricted && mp.MaxCall.D() < time.Minute {
			add(path+".max_call", 0, "must be at least 1m")
		}
		if m != Restricted && mp.MaxCall != 0 {
			add(path+".max_call", 0, "only restricted has a maximum call duration")
		}
		if m != Blocked && mp.Confirm {
			add(path+".confirm", 0, "only blocked may wait for a supervisor's confirmation")
		}
	}
	return ps
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxAtLeast is the most signals of a kind any rule needs.
func (p *Policy) maxAtLeast(s Signal) int {
	n := 0
	for _, r := range p.Rules {
		if r.Signal == s {
			n = max(n, r.AtLeast)
		}
	}
	return n
}

// maxWindow is the longest window of any rule of signal s.
func (p *Policy) maxWindow(s Signal) time.Duration {
	var w time.Duration
	for _, r := range p.Rules {
		if r.Signal == s {
			w = max(w, r.Window.D())
		}
	}
	return w
}
