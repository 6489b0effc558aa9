package ivr

import (
	"regexp"
	"strings"
	"time"
)

// Node kinds of the flow language. flow.schema.json describes their fields.
const (
	KindPlay       = "play"
	KindMenu       = "menu"
	KindCollect    = "collect"
	KindBranch     = "branch"
	KindSet        = "set"
	KindLanguage   = "language"
	KindSay        = "say"
	KindTransfer   = "transfer"
	KindQueue      = "queue"
	KindCaseLookup = "case_lookup"
	KindCallback   = "callback"
	KindRecord     = "record"
	KindSurvey     = "survey"
	KindHangup     = "hangup"
	KindGoto       = "goto"
	KindInclude    = "include"
	KindReturn     = "return"
)

// DefaultLanguage is the language every prompt falls back to.
const DefaultLanguage = "zh-CN"

// SurveyLevels are the five levels of 好差评, key 1 to 5.
var SurveyLevels = [5]string{"非常满意", "满意", "基本满意", "不满意", "非常不满意"}

// Flow is a validated flow, ready to run. It is immutable once loaded and
// safe to share between calls.
type Flow struct {
	name        string
	description string
	languages   []string
	defaultLang string
	start       string
	nodes       map[string]*Node
	order       []string // node ids in source order
}

// Name is the flow's name (its id).
func (f *Flow) Name() string { return f.name }

// Description is the flow's free-text description.
func (f *Flow) Description() string { return f.description }

// Languages are the languages the flow offers, the default first.
func (f *Flow) Languages() []string { return append([]string(nil), f.languages...) }

// DefaultLanguage is the language a call starts in.
func (f *Flow) DefaultLanguage() string { return f.defaultLang }

// Start is the id of the first node.
func (f *Flow) Start() string { return f.start }

// NodeIDs lists the node ids in source order (sub-flow nodes appear as
// "<include node>/<node>").
func (f *Flow) NodeIDs() []string { return append([]string(nil), f.order...) }

// Node returns a node by id.
func (f *Flow) Node(id string) (*Node, bool) {
	n, ok := f.nodes[id]
	return n, ok
}

// Node is one step of a flow. Which fields matter depends on Kind.
type Node struct {
	ID   string
	Kind string
	// Path locates the node for messages: "nodes.main" or, for a sub-flow
	// node, "nodes.survey/ask" (file "survey").
	Path string
	Line int
	// lines maps a field name to its line, for precise messages.
	lines map[string]int

	Prompts []string
	BargeIn bool
	Next    string

	// menu, language, collect, survey, callback
	Options        []Option // menu: key -> node; language: key -> language
	Timeout        time.Duration
	Retries        int
	NoInputPrompts []string
	InvalidPrompts []string
	OnExhausted    string
	Zero           string // language, survey: key 0 -> node (a person)

	// collect
	Var               string
	Min, Max          int
	Terminator        string
	Pattern           *regexp.Regexp
	InterDigitTimeout time.Duration

	// branch
	Cases   []Case
	Default string

	// set
	Set []Assign

	// say
	SayAs string // "digits" or "case-number"

	// transfer, queue
	Destination string
	Queue       string
	OnFail      string

	// case_lookup
	Found, NotFound string
	StatusPrompts   map[string]string

	// callback
	ConfirmPrompts []string
	OnCancel       string

	// record
	MaxDuration time.Duration

	// hangup
	Reason string

	// include (resolved at load: the node then jumps into the sub-flow)
	Flow string
}

// fieldLine is the line of a field, or of the node when unknown.
func (n *Node) fieldLine(field string) int {
	if l := n.lines[field]; l > 0 {
		return l
	}
	if key, ok := strings.CutPrefix(field, "options."); ok {
		for _, o := range n.Options {
			if o.Key == key {
				return o.Line
			}
		}
	}
	return n.Line
}

// Option is one menu key.
type Option struct {
	Key  string
	Next string // node id (menu) or language (language node)
	Line int
}

// Case is one arm of a branch node; exactly one condition is set.
type Case struct {
	Open, Closed string   // calendar id
	CallerPrefix []string // caller number starts with one of these
	Var          string
	Equals       *string
	NotEquals    *string
	In           []string
	Next         string
	Line         int
}

// Label names the condition for traces ("open edu-bureau").
func (c Case) Label() string {
	switch {
	case c.Open != "":
		return "open " + c.Open
	case c.Closed != "":
		return "closed " + c.Closed
	case len(c.CallerPrefix) > 0:
		return "caller_prefix"
	case c.Equals != nil:
		return c.Var + " == " + *c.Equals
	case c.NotEquals != nil:
		return c.Var + " != " + *c.NotEquals
	case c.In != nil:
		return c.Var + " in list"
	}
	return "?"
}

// Assign is one variable assignment of a set node.
type Assign struct {
	Var, Value string
}
