package ivr

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a flow sane for a caller (and a fuzzer).
const (
	maxIncludeDepth = 4
	maxNodes        = 1000
	maxTimeout      = 60 * time.Second
	maxRetries      = 5
	maxRecord       = 5 * time.Minute
	maxDigits       = 32
	hardTimeout     = 5 * time.Second
	hardRetries     = 2
	hardInterDigit  = 3 * time.Second
)

var (
	idRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	varRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	keyRE  = regexp.MustCompile(`^[0-9*#]$`)
	langRE = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)
)

// Variables every call has without a set node.
var builtinVars = map[string]bool{"caller": true, "dialled": true, "lang": true, "case_number_own": true}

// Fields each kind accepts besides kind and description.
var kindFields = map[string][]string{
	KindPlay:       {"prompts", "next", "barge_in"},
	KindMenu:       {"prompts", "barge_in", "options", "timeout", "retries", "no_input_prompts", "invalid_prompts", "on_exhausted"},
	KindLanguage:   {"prompts", "barge_in", "options", "timeout", "zero", "next"},
	KindCollect:    {"prompts", "barge_in", "var", "min", "max", "terminator", "pattern", "timeout", "inter_digit_timeout", "retries", "no_input_prompts", "invalid_prompts", "on_exhausted", "next"},
	KindBranch:     {"cases", "default"},
	KindSet:        {"vars", "next"},
	KindSay:        {"prompts", "var", "as", "next"},
	KindTransfer:   {"destination", "prompts", "next", "on_fail"},
	KindQueue:      {"queue", "prompts", "next", "on_fail"},
	KindCaseLookup: {"var", "found", "not_found", "status_prompts"},
	KindCallback:   {"prompts", "confirm_prompts", "timeout", "retries", "next", "on_cancel"},
	KindRecord:     {"prompts", "max_duration", "terminator", "next", "on_fail"},
	KindSurvey:     {"prompts", "barge_in", "timeout", "retries", "no_input_prompts", "invalid_prompts", "next", "zero", "on_exhausted"},
	KindHangup:     {"prompts", "reason"},
	KindGoto:       {"next"},
	KindInclude:    {"flow", "next"},
	KindReturn:     {},
}

// Fields each kind must have.
var kindRequired = map[string][]string{
	KindPlay:       {"prompts", "next"},
	KindMenu:       {"prompts", "options", "on_exhausted"},
	KindLanguage:   {"prompts", "options", "next"},
	KindCollect:    {"prompts", "var", "max", "next", "on_exhausted"},
	KindBranch:     {"cases", "default"},
	KindSet:        {"vars", "next"},
	KindSay:        {"var", "next"},
	KindTransfer:   {"destination"},
	KindQueue:      {"queue"},
	KindCaseLookup: {"var", "found", "not_found"},
	KindCallback:   {"prompts", "confirm_prompts", "next", "on_cancel"},
	KindRecord:     {"prompts", "next"},
	KindSurvey:     {"prompts", "next"},
	KindGoto:       {"next"},
	KindInclude:    {"flow", "next"},
}

// Load parses a flow from YAML and validates it against env. It returns a
// *ValidationError listing every problem (node path and line) when the flow
// is invalid, and never a usable flow alongside it.
func Load(src []byte, env Env) (*Flow, error) {
	l := &loader{env: env}
	f := l.load(src)
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			// Main-file problems first, then by line.
			ai, bi := strings.Contains(a.Path, ":"), strings.Contains(b.Path, ":")
			if ai != bi {
				return !ai
			}
			return a.Line < b.Line
		})
		return nil, &ValidationError{Problems: l.problems}
	}
	return f, nil
}

type loader struct {
	env      Env
	problems []Problem
}

func (l *loader) add(path string, line int, format string, args ...any) {
	if len(l.problems) >= 500 {
		return
	}
	l.problems = append(l.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// file is one parsed YAML file (the main flow or a sub-flow) before its
// includes are expanded.
type file struct {
	prefix      string // "" for the main flow, "<flow id>:" for a sub-flow
	name        string
	description string
	languages   []string
	defaultLang string
	start       string
	startLine   int
	subflow     bool
	nodes       map[string]*Node
	order       []string
}

func (l *loader) load(src []byte) *Flow {
	main := l.parseFile(src, "", false)
	if main == nil {
		return nil
	}
	if main.subflow {
		l.add("subflow", 0, "a sub-flow cannot be loaded as a flow of its own: include it")
	}
	f := &Flow{
		name: main.name, description: main.description, languages: main.languages,
		defaultLang: main.defaultLang, start: main.start, nodes: map[string]*Node{},
	}
	l.expand(f, main, "", "", []string{main.name})
	if len(f.nodes) > maxNodes {
		l.add("nodes", 0, "too many nodes after includes: %d (limit %d)", len(f.nodes), maxNodes)
		return f
	}
	l.validateGraph(f)
	l.validateEnv(f)
	l.validateRules(f)
	return f
}

// expand copies a file's nodes into f under idPrefix, turning include nodes
// into jumps into the sub-flow and the sub-flow's return nodes into jumps to
// the include node's next.
func (l *loader) expand(f *Flow, pf *file, idPrefix, returnTo string, stack []string) {
	for _, id := range pf.order {
		n := *pf.nodes[id]
		n.ID = idPrefix + id
		n.rewrite(func(t string) string {
			if t == "" {
				return ""
			}
			return idPrefix + t
		})
		if n.Kind == KindReturn {
			n.Next = returnTo // "" in a main flow: reported by the parser
		}
		if n.Kind == KindInclude && n.Flow != "" {
			sub := l.resolveInclude(&n, stack)
			if sub != nil {
				l.expand(f, sub, n.ID+"/", n.Next, append(stack, n.Flow))
				n.Next = n.ID + "/" + sub.start
			}
			// On failure the problem is listed; n.Next stays so that the
			// rest of the graph is still checked.
		}
		f.nodes[n.ID] = &n
		f.order = append(f.order, n.ID)
	}
}

func (l *loader) resolveInclude(n *Node, stack []string) *file {
	if slices.Contains(stack, n.Flow) {
		l.add(n.Path+".flow", n.Line, "include cycle: %s -> %s", strings.Join(stack, " -> "), n.Flow)
		return nil
	}
	if len(stack) > maxIncludeDepth {
		l.add(n.Path+".flow", n.Line, "includes nested deeper than %d", maxIncludeDepth)
		return nil
	}
	if l.env.Includes == nil {
		l.add(n.Path+".flow", n.Line, "sub-flow %q: no include source configured", n.Flow)
		return nil
	}
	src, err := l.env.Includes.Include(n.Flow)
	if err != nil {
		l.add(n.Path+".flow", n.Line, "sub-flow %q: %v", n.Flow, err)
		return nil
	}
	sub := l.parseFile(src, n.Flow+":", true)
	if sub == nil {
		return nil
	}
	if !sub.subflow {
		l.add(n.Path+".flow", n.Line, "sub-flow %q is not marked subflow: true", n.Flow)
		return nil
	}
	return sub
}

// rewrite maps every node reference of n through fn.
func (n *Node) rewrite(fn func(string) string) {
	n.Next = fn(n.Next)
	n.OnExhausted = fn(n.OnExhausted)
	n.Zero = fn(n.Zero)
	n.Default = fn(n.Default)
	n.OnFail = fn(n.OnFail)
	n.Found = fn(n.Found)
	n.NotFound = fn(n.NotFound)
	n.OnCancel = fn(n.OnCancel)
	if n.Kind == KindMenu {
		opts := slices.Clone(n.Options)
		for i := range opts {
			opts[i].Next = fn(opts[i].Next)
		}
		n.Options = opts
	}
	cases := slices.Clone(n.Cases)
	for i := range cases {
		cases[i].Next = fn(cases[i].Next)
	}
	n.Cases = cases
}

// parseFile reads one YAML file's structure and its nodes' fields.
func (l *loader) parseFile(src []byte, prefix string, sub bool) *file {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		l.add(prefix+"(file)", yamlErrLine(err), "YAML: %v", err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		l.add(prefix+"(file)", 0, "empty document")
		return nil
	}
	root := doc.Content[0]
	m := l.mapping(prefix+"(file)", root)
	if m == nil {
		return nil
	}
	pf := &file{prefix: prefix, nodes: map[string]*Node{}}
	for _, k := range m.keys {
		if !slices.Contains([]string{"name", "description", "languages", "default_language", "start", "subflow", "defaults", "nodes"}, k) {
			l.add(prefix+k, m.lines[k], "unknown field %q", k)
		}
	}
	pf.name = l.str(prefix+"name", m, "name")
	if pf.name == "" {
		l.add(prefix+"name", root.Line, "name is required")
	} else if !idRE.MatchString(pf.name) {
		l.add(prefix+"name", m.lines["name"], "name %q: use letters, digits, - and _", pf.name)
	}
	pf.description = l.str(prefix+"description", m, "description")
	pf.subflow = l.boolean(prefix+"subflow", m, "subflow", false)
	pf.start = l.str(prefix+"start", m, "start")
	pf.startLine = m.lines["start"]
	if pf.start == "" {
		l.add(prefix+"start", root.Line, "start is required")
	}
	pf.languages = l.strList(prefix+"languages", m, "languages")
	if len(pf.languages) == 0 && !sub {
		pf.languages = []string{DefaultLanguage}
	}
	seen := map[string]bool{}
	for _, lang := range pf.languages {
		if !langRE.MatchString(lang) {
			l.add(prefix+"languages", m.lines["languages"], "language %q is not a language tag like zh-CN or en", lang)
		}
		if seen[lang] {
			l.add(prefix+"languages", m.lines["languages"], "language %q listed twice", lang)
		}
		seen[lang] = true
	}
	pf.defaultLang = l.str(prefix+"default_language", m, "default_language")
	if pf.defaultLang == "" && len(pf.languages) > 0 {
		pf.defaultLang = pf.languages[0]
	}
	if pf.defaultLang != "" && len(pf.languages) > 0 && !seen[pf.defaultLang] {
		l.add(prefix+"default_language", m.lines["default_language"], "default language %q is not in languages", pf.defaultLang)
	}
	if len(pf.languages) > 0 && !seen[DefaultLanguage] {
		l.add(prefix+"languages", m.lines["languages"], "languages must include %s (the fallback of every prompt)", DefaultLanguage)
	}

	d := defaults{timeout: hardTimeout, retries: hardRetries, interDigit: hardInterDigit}
	if dn := m.val["defaults"]; dn != nil {
		l.parseDefaults(prefix+"defaults", dn, &d)
	}

	nodes := m.val["nodes"]
	if nodes == nil {
		l.add(prefix+"nodes", root.Line, "nodes are required")
		return pf
	}
	nm := l.mapping(prefix+"nodes", nodes)
	if nm == nil {
		return pf
	}
	if len(nm.keys) > maxNodes {
		l.add(prefix+"nodes", nodes.Line, "too many nodes: %d (limit %d)", len(nm.keys), maxNodes)
		return pf
	}
	for _, id := range nm.keys {
		path := prefix + "nodes." + id
		if !idRE.MatchString(id) {
			l.add(path, nm.lines[id], "node id %q: use letters, digits, - and _ (at most 64)", id)
		}
		n := l.parseNode(path, id, nm.val[id], d)
		if n == nil {
			continue
		}
		if n.Kind == KindReturn && !sub {
			l.add(path, n.Line, "return is only allowed in a sub-flow")
		}
		pf.nodes[id] = n
		pf.order = append(pf.order, id)
	}
	if pf.start != "" && len(pf.nodes) > 0 && pf.nodes[pf.start] == nil {
		l.add(prefix+"start", pf.startLine, "start node %q does not exist", pf.start)
	}
	// References inside this file.
	for _, id := range pf.order {
		n := pf.nodes[id]
		for _, e := range n.edges() {
			if e.to == "" {
				continue
			}
			if pf.nodes[e.to] == nil {
				l.add(n.Path+"."+e.field, e.line, "unknown target node %q", e.to)
			}
		}
	}
	return pf
}

type defaults struct {
	timeout, interDigit time.Duration
	retries             int
	noInput, invalid    []string
}

func (l *loader) parseDefaults(path string, n *yaml.Node, d *defaults) {
	m := l.mapping(path, n)
	if m == nil {
		return
	}
	for _, k := range m.keys {
		switch k {
		case "timeout":
			d.timeout = l.duration(path+"."+k, m, k, d.timeout, maxTimeout)
		case "inter_digit_timeout":
			d.interDigit = l.duration(path+"."+k, m, k, d.interDigit, maxTimeout)
		case "retries":
			d.retries = l.integer(path+"."+k, m, k, d.retries, 0, maxRetries)
		case "no_input_prompts":
			d.noInput = l.strList(path+"."+k, m, k)
		case "invalid_prompts":
			d.invalid = l.strList(path+"."+k, m, k)
		default:
			l.add(path+"."+k, m.lines[k], "unknown field %q", k)
		}
	}
}

func (l *loader) parseNode(path, id string, v *yaml.Node, d defaults) *Node {
	m := l.mapping(path, v)
	if m == nil {
		return nil
	}
	n := &Node{ID: id, Path: path, Line: v.Line, lines: m.lines}
	n.Kind = l.str(path+".kind", m, "kind")
	allowed, ok := kindFields[n.Kind]
	if !ok {
		if n.Kind == "" {
			l.add(path, v.Line, "kind is required")
		} else {
			l.add(path+".kind", m.lines["kind"], "unknown kind %q", n.Kind)
		}
		return nil
	}
	for _, k := range m.keys {
		if k != "kind" && k != "description" && !slices.Contains(allowed, k) {
			l.add(path+"."+k, m.lines[k], "field %q is not allowed in a %s node", k, n.Kind)
		}
	}
	for _, k := range kindRequired[n.Kind] {
		if m.val[k] == nil {
			l.add(path, v.Line, "%s node needs %q", n.Kind, k)
		}
	}
	n.Prompts = l.strList(path+".prompts", m, "prompts")
	n.Next = l.str(path+".next", m, "next")
	n.BargeIn = l.boolean(path+".barge_in", m, "barge_in", n.Kind != KindPlay)
	n.Timeout = l.duration(path+".timeout", m, "timeout", d.timeout, maxTimeout)
	n.InterDigitTimeout = l.duration(path+".inter_digit_timeout", m, "inter_digit_timeout", d.interDigit, maxTimeout)
	n.Retries = l.integer(path+".retries", m, "retries", d.retries, 0, maxRetries)
	n.NoInputPrompts = l.strList(path+".no_input_prompts", m, "no_input_prompts")
	n.InvalidPrompts = l.strList(path+".invalid_prompts", m, "invalid_prompts")
	if n.Kind == KindMenu || n.Kind == KindCollect || n.Kind == KindSurvey {
		if m.val["no_input_prompts"] == nil {
			n.NoInputPrompts = d.noInput
		}
		if m.val["invalid_prompts"] == nil {
			n.InvalidPrompts = d.invalid
		}
	}
	n.OnExhausted = l.str(path+".on_exhausted", m, "on_exhausted")
	n.Zero = l.str(path+".zero", m, "zero")
	n.OnFail = l.str(path+".on_fail", m, "on_fail")
	n.OnCancel = l.str(path+".on_cancel", m, "on_cancel")
	n.Found = l.str(path+".found", m, "found")
	n.NotFound = l.str(path+".not_found", m, "not_found")
	n.Default = l.str(path+".default", m, "default")
	n.Var = l.str(path+".var", m, "var")
	if n.Var != "" && !varRE.MatchString(n.Var) {
		l.add(path+".var", m.lines["var"], "variable name %q: use lower-case letters, digits and _", n.Var)
	}
	if (n.Kind == KindCollect || n.Kind == KindSet) && builtinVars[n.Var] {
		l.add(path+".var", m.lines["var"], "variable %q is built in and read-only", n.Var)
	}
	n.Destination = l.str(path+".destination", m, "destination")
	n.Queue = l.str(path+".queue", m, "queue")
	n.Reason = l.str(path+".reason", m, "reason")
	n.Flow = l.str(path+".flow", m, "flow")
	n.ConfirmPrompts = l.strList(path+".confirm_prompts", m, "confirm_prompts")
	n.Terminator = l.str(path+".terminator", m, "terminator")
	if n.Terminator != "" && n.Terminator != "#" && n.Terminator != "*" {
		l.add(path+".terminator", m.lines["terminator"], "terminator must be # or *")
	}

	switch n.Kind {
	case KindMenu:
		n.Options = l.options(path+".options", m, true)
		if len(n.Options) == 0 && m.val["options"] != nil {
			l.add(path+".options", m.lines["options"], "a menu needs at least one option")
		}
	case KindLanguage:
		n.Options = l.options(path+".options", m, false)
	case KindCollect:
		n.Min = l.integer(path+".min", m, "min", 1, 0, maxDigits)
		n.Max = l.integer(path+".max", m, "max", 0, 1, maxDigits)
		if n.Max > 0 && n.Min > n.Max {
			l.add(path+".min", m.lines["min"], "min %d is greater than max %d", n.Min, n.Max)
		}
		if p := l.str(path+".pattern", m, "pattern"); p != "" {
			re, err := regexp.Compile("^(?:" + p + ")$")
			if err != nil {
				l.add(path+".pattern", m.lines["pattern"], "pattern: %v", err)
			}
			n.Pattern = re
		}
	case KindBranch:
		n.Cases = l.cases(path+".cases", m)
	case KindSet:
		n.Set = l.assigns(path+".vars", m)
	case KindSay:
		n.SayAs = l.str(path+".as", m, "as")
		if n.SayAs == "" {
			n.SayAs = "digits"
		}
		if n.SayAs != "digits" && n.SayAs != "case-number" {
			l.add(path+".as", m.lines["as"], "as must be digits or case-number")
		}
	case KindCaseLookup:
		if sp := m.val["status_prompts"]; sp != nil {
			if sm := l.mapping(path+".status_prompts", sp); sm != nil {
				n.StatusPrompts = map[string]string{}
				for _, k := range sm.keys {
					n.StatusPrompts[k] = l.str(path+".status_prompts."+k, sm, k)
				}
			}
		}
	case KindRecord:
		n.MaxDuration = l.duration(path+".max_duration", m, "max_duration", time.Minute, maxRecord)
		if n.Terminator == "" {
			n.Terminator = "#"
		}
	case KindCallback:
		if m.val["retries"] == nil {
			n.Retries = 1
		}
	}
	return n
}

func (l *loader) options(path string, m *ymap, menu bool) []Option {
	v := m.val["options"]
	if v == nil {
		return nil
	}
	om := l.mapping(path, v)
	if om == nil {
		return nil
	}
	var opts []Option
	for _, k := range om.keys {
		if !keyRE.MatchString(k) {
			l.add(path+"."+k, om.lines[k], "menu key %q must be one of 0-9, * or #", k)
		}
		target := l.str(path+"."+k, om, k)
		if target == "" {
			l.add(path+"."+k, om.lines[k], "option %q has no target", k)
		}
		if !menu && target != "" && !langRE.MatchString(target) {
			l.add(path+"."+k, om.lines[k], "option %q: %q is not a language", k, target)
		}
		opts = append(opts, Option{Key: k, Next: target, Line: om.lines[k]})
	}
	return opts
}

func (l *loader) cases(path string, m *ymap) []Case {
	v := m.val["cases"]
	if v == nil {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		l.add(path, v.Line, "cases must be a list")
		return nil
	}
	if len(v.Content) == 0 {
		l.add(path, v.Line, "a branch needs at least one case")
	}
	var out []Case
	for i, cn := range v.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		cm := l.mapping(p, cn)
		if cm == nil {
			continue
		}
		c := Case{Line: cn.Line}
		conds := 0
		for _, k := range cm.keys {
			switch k {
			case "open":
				c.Open = l.str(p+".open", cm, k)
				conds++
			case "closed":
				c.Closed = l.str(p+".closed", cm, k)
				conds++
			case "caller_prefix":
				c.CallerPrefix = l.strList(p+".caller_prefix", cm, k)
				if len(c.CallerPrefix) == 0 {
					l.add(p+".caller_prefix", cm.lines[k], "caller_prefix needs at least one prefix")
				}
				conds++
			case "var":
				c.Var = l.str(p+".var", cm, k)
			case "equals":
				s := l.str(p+".equals", cm, k)
				c.Equals = &s
				conds++
			case "not_equals":
				s := l.str(p+".not_equals", cm, k)
				c.NotEquals = &s
				conds++
			case "in":
				c.In = l.strList(p+".in", cm, k)
				if c.In == nil {
					c.In = []string{}
				}
				conds++
			case "next":
				c.Next = l.str(p+".next", cm, k)
			default:
				l.add(p+"."+k, cm.lines[k], "unknown field %q in a case", k)
			}
		}
		if conds != 1 {
			l.add(p, cn.Line, "a case needs exactly one condition (open, closed, caller_prefix, equals, not_equals, in); it has %d", conds)
		}
		needsVar := c.Equals != nil || c.NotEquals != nil || c.In != nil
		if needsVar && c.Var == "" {
			l.add(p, cn.Line, "a comparison needs var")
		}
		if !needsVar && c.Var != "" {
			l.add(p+".var", cm.lines["var"], "var is only used with equals, not_equals or in")
		}
		if c.Var != "" && !varRE.MatchString(c.Var) {
			l.add(p+".var", cm.lines["var"], "variable name %q: use lower-case letters, digits and _", c.Var)
		}
		if c.Next == "" {
			l.add(p, cn.Line, "a case needs next")
		}
		out = append(out, c)
	}
	return out
}

func (l *loader) assigns(path string, m *ymap) []Assign {
	v := m.val["vars"]
	if v == nil {
		return nil
	}
	am := l.mapping(path, v)
	if am == nil {
		return nil
	}
	var out []Assign
	for _, k := range am.keys {
		if !varRE.MatchString(k) {
			l.add(path+"."+k, am.lines[k], "variable name %q: use lower-case letters, digits and _", k)
		} else if builtinVars[k] {
			l.add(path+"."+k, am.lines[k], "variable %q is built in and read-only", k)
		}
		out = append(out, Assign{Var: k, Value: l.str(path+"."+k, am, k)})
	}
	if len(out) == 0 {
		l.add(path, v.Line, "set needs at least one variable")
	}
	return out
}

// ymap is a YAML mapping with its keys in order and each key's line.
type ymap struct {
	keys  []string
	val   map[string]*yaml.Node
	lines map[string]int
}

// mapping reads a mapping node, listing duplicate keys as problems.
func (l *loader) mapping(path string, n *yaml.Node) *ymap {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		line := 0
		if n != nil {
			line = n.Line
		}
		l.add(path, line, "must be a mapping")
		return nil
	}
	m := &ymap{val: map[string]*yaml.Node{}, lines: map[string]int{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			l.add(path, n.Content[i].Line, "keys must be plain values")
			continue
		}
		if prev, dup := m.lines[k.Value]; dup {
			l.add(path+"."+k.Value, k.Line, "duplicate key %q (first at line %d)", k.Value, prev)
			continue
		}
		m.keys = append(m.keys, k.Value)
		m.val[k.Value] = n.Content[i+1]
		m.lines[k.Value] = k.Line
	}
	return m
}

// deref follows aliases (bounded, so that a fuzzer's alias bomb cannot loop).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func (l *loader) str(path string, m *ymap, key string) string {
	v := deref(m.val[key])
	if m.val[key] == nil {
		return ""
	}
	if v == nil || v.Kind != yaml.ScalarNode {
		l.add(path, m.lines[key], "must be a single value")
		return ""
	}
	return v.Value
}

func (l *loader) strList(path string, m *ymap, key string) []string {
	v := deref(m.val[key])
	if m.val[key] == nil {
		return nil
	}
	if v != nil && v.Kind == yaml.ScalarNode {
		if v.Value == "" {
			l.add(path, m.lines[key], "must not be empty")
			return nil
		}
		return []string{v.Value}
	}
	if v == nil || v.Kind != yaml.SequenceNode {
		l.add(path, m.lines[key], "must be a value or a list of values")
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, e := range v.Content {
		e = deref(e)
		if e == nil || e.Kind != yaml.ScalarNode || e.Value == "" {
			l.add(fmt.Sprintf("%s[%d]", path, i), v.Line, "must be a non-empty value")
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (l *loader) boolean(path string, m *ymap, key string, def bool) bool {
	s := l.str(path, m, key)
	if m.val[key] == nil || s == "" {
		return def
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	l.add(path, m.lines[key], "must be true or false")
	return def
}

func (l *loader) integer(path string, m *ymap, key string, def, lo, hi int) int {
	if m.val[key] == nil {
		return def
	}
	s := l.str(path, m, key)
	i, err := strconv.Atoi(s)
	if err != nil {
		l.add(path, m.lines[key], "must be a whole number")
		return def
	}
	if i < lo || i > hi {
		l.add(path, m.lines[key], "must be between %d and %d", lo, hi)
		return def
	}
	return i
}

func (l *loader) duration(path string, m *ymap, key string, def, hi time.Duration) time.Duration {
	if m.val[key] == nil {
		return def
	}
	s := l.str(path, m, key)
	d, err := time.ParseDuration(s)
	if err != nil {
		l.add(path, m.lines[key], "must be a duration like 5s")
		return def
	}
	if d <= 0 || d > hi {
		l.add(path, m.lines[key], "must be above 0 and at most %s", hi)
		return def
	}
	return d
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}
