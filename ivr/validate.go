package ivr

import (
	"fmt"
	"slices"
	"strings"
)

// edge is one way out of a node.
type edge struct {
	field string // the field naming the target, e.g. "options.1"
	to    string
	line  int
	// press is true when taking the edge costs the caller a key press that
	// chooses where to go (a menu or language option). Entering data (a case
	// number, a survey level, a confirmation) is not counted.
	press bool
	// lang, for a language option, is the language it selects.
	lang string
}

func (n *Node) edges() []edge {
	var out []edge
	add := func(field, to string) {
		if to != "" {
			out = append(out, edge{field: field, to: to, line: n.fieldLine(field)})
		}
	}
	switch n.Kind {
	case KindMenu:
		for _, o := range n.Options {
			out = append(out, edge{field: "options." + o.Key, to: o.Next, line: o.Line, press: true})
		}
	case KindLanguage:
		for _, o := range n.Options {
			out = append(out, edge{field: "options." + o.Key, to: n.Next, line: o.Line, press: true, lang: o.Next})
		}
	case KindBranch:
		for i, c := range n.Cases {
			if c.Next != "" {
				out = append(out, edge{field: fmt.Sprintf("cases[%d].next", i), to: c.Next, line: c.Line})
			}
		}
	}
	add("next", n.Next)
	add("on_exhausted", n.OnExhausted)
	if n.Zero != "" {
		out = append(out, edge{field: "zero", to: n.Zero, line: n.fieldLine("zero"), press: true})
	}
	add("default", n.Default)
	add("on_fail", n.OnFail)
	add("found", n.Found)
	add("not_found", n.NotFound)
	add("on_cancel", n.OnCancel)
	return out
}

// waits reports whether the node waits for the caller (input or an external
// leg) before it moves on, so that a loop through it cannot spin.
func (n *Node) waits() bool {
	switch n.Kind {
	case KindMenu, KindCollect, KindLanguage, KindSurvey, KindCallback, KindRecord, KindTransfer, KindQueue:
		return true
	}
	return false
}

// validateGraph checks reachability and loops that never wait for input.
func (l *loader) validateGraph(f *Flow) {
	if f.nodes[f.start] == nil {
		return // reported by the parser
	}
	// Menus: duplicate keys are caught by the YAML mapping reader; here a
	// menu whose every option loops back to itself is still fine (it waits).
	seen := map[string]bool{f.start: true}
	queue := []string{f.start}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		n := f.nodes[id]
		if n == nil {
			continue
		}
		for _, e := range n.edges() {
			if !seen[e.to] && f.nodes[e.to] != nil {
				seen[e.to] = true
				queue = append(queue, e.to)
			}
		}
	}
	for _, id := range f.order {
		if !seen[id] {
			n := f.nodes[id]
			l.add(n.Path, n.Line, "node %q is unreachable from start %q", n.ID, f.start)
		}
	}
	// Loops without input: a cycle through nodes that never wait.
	const (
		white = iota
		grey
		black
	)
	colour := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		colour[id] = grey
		stack = append(stack, id)
		n := f.nodes[id]
		for _, e := range n.edges() {
			m := f.nodes[e.to]
			if m == nil || m.waits() {
				continue
			}
			switch colour[e.to] {
			case white:
				visit(e.to)
			case grey:
				i := slices.Index(stack, e.to)
				cycle := append(slices.Clone(stack[i:]), e.to)
				key := strings.Join(sortedCopy(stack[i:]), ",")
				if !reported[key] {
					reported[key] = true
					first := f.nodes[e.to]
					l.add(first.Path, first.Line, "loop without waiting for input: %s", strings.Join(cycle, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		colour[id] = black
	}
	for _, id := range f.order {
		if n := f.nodes[id]; colour[id] == white && !n.waits() {
			visit(id)
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// validateEnv checks prompts, destinations, queues, calendars and variables
// against the environment.
func (l *loader) validateEnv(f *Flow) {
	cat := l.env.Catalogue
	if cat == nil {
		l.add("(env)", 0, "no prompt catalogue to check prompts against")
	} else {
		for _, lang := range f.languages {
			if !slices.Contains(cat.Languages, lang) {
				l.add("languages", 0, "language %q is not in the prompt catalogue (%s)", lang, strings.Join(cat.Languages, ", "))
			}
		}
	}
	assigned := map[string]bool{}
	for k := range builtinVars {
		assigned[k] = true
	}
	for _, id := range f.order {
		n := f.nodes[id]
		if n.Kind == KindCollect && n.Var != "" {
			assigned[n.Var] = true
		}
		for _, a := range n.Set {
			assigned[a.Var] = true
		}
		if n.Kind == KindCaseLookup {
			assigned["case_status"] = true
		}
	}
	checkPrompts := func(n *Node, field string, ids []string) {
		if cat == nil {
			return
		}
		for _, id := range ids {
			var missing []string
			for _, lang := range f.languages {
				if !cat.Has(id, lang) {
					missing = append(missing, lang)
				}
			}
			if len(missing) > 0 {
				l.add(n.Path+"."+field, n.fieldLine(field), "prompt %q is missing in %s", id, strings.Join(missing, ", "))
			}
		}
	}
	for _, id := range f.order {
		n := f.nodes[id]
		checkPrompts(n, "prompts", n.Prompts)
		checkPrompts(n, "no_input_prompts", n.NoInputPrompts)
		checkPrompts(n, "invalid_prompts", n.InvalidPrompts)
		checkPrompts(n, "confirm_prompts", n.ConfirmPrompts)
		for _, p := range n.StatusPrompts {
			checkPrompts(n, "status_prompts", []string{p})
		}
		if n.Kind == KindSay || n.Kind == KindCallback {
			checkPrompts(n, "(digits)", digitPromptIDs(n.Kind == KindSay && n.SayAs == "case-number"))
		}
		if n.Kind == KindSurvey && len(f.languages) > 0 {
			// nothing more: the levels are keys 1-5
		}
		switch n.Kind {
		case KindLanguage:
			for _, o := range n.Options {
				if !slices.Contains(f.languages, o.Next) {
					l.add(n.Path+".options."+o.Key, o.Line, "language %q is not offered by the flow (languages: %s)", o.Next, strings.Join(f.languages, ", "))
				}
			}
		case KindTransfer:
			if n.Destination != "" && !l.env.Destinations[n.Destination] {
				l.add(n.Path+".destination", n.fieldLine("destination"), "destination %q is not configured", n.Destination)
			}
		case KindQueue:
			if n.Queue != "" && !l.env.Queues[n.Queue] {
				l.add(n.Path+".queue", n.fieldLine("queue"), "queue %q is not configured", n.Queue)
			}
		case KindBranch:
			for i, c := range n.Cases {
				for _, cal := range []string{c.Open, c.Closed} {
					if cal == "" {
						continue
					}
					if l.env.Calendars == nil || !l.env.Calendars.Has(cal) {
						l.add(fmt.Sprintf("%s.cases[%d]", n.Path, i), c.Line, "calendar %q is not defined", cal)
					}
				}
				if c.Var != "" && !assigned[c.Var] {
					l.add(fmt.Sprintf("%s.cases[%d].var", n.Path, i), c.Line, "variable %q is never set", c.Var)
				}
			}
		case KindSay, KindCaseLookup:
			if n.Var != "" && !assigned[n.Var] {
				l.add(n.Path+".var", n.fieldLine("var"), "variable %q is never set", n.Var)
			}
		}
	}
}

// digitPromptIDs are the prompts saying digits and (for case numbers) a dash.
func digitPromptIDs(dash bool) []string {
	ids := make([]string, 0, 11)
	for d := '0'; d <= '9'; d++ {
		ids = append(ids, "digit-"+string(d))
	}
	if dash {
		ids = append(ids, "digit-dash")
	}
	return ids
}

// Reach is how many choosing key presses a caller needs, at least, to reach
// a destination or queue in a language.
type Reach struct {
	Target  string `json:"target"` // "transfer:12315", "queue:general"
	Node    string `json:"node"`
	Lang    string `json:"lang"`
	Presses int    `json:"presses"`
}

// KeyPresses lists, for every transfer and queue node and every language,
// the fewest menu or language key presses that reach it from the start.
// Choosing a language other than the default costs a press; entering data
// (a case number, a survey level, a confirmation) does not.
func (f *Flow) KeyPresses() []Reach {
	var out []Reach
	for _, lang := range f.languages {
		dist := map[string]int{f.start: 0}
		// 0-1 breadth-first search.
		deque := []string{f.start}
		for len(deque) > 0 {
			id := deque[0]
			deque = deque[1:]
			n := f.nodes[id]
			for _, e := range n.edges() {
				if f.nodes[e.to] == nil {
					continue
				}
				cost := 0
				if e.press {
					cost = 1
				}
				if n.Kind == KindLanguage {
					// Timing out keeps the default language; a press is
					// needed only to choose another one.
					if e.field == "next" {
						if lang != f.defaultLang {
							continue
						}
					} else if e.lang != "" && e.lang != lang {
						continue
					}
				}
				d := dist[id] + cost
				if old, ok := dist[e.to]; !ok || d < old {
					dist[e.to] = d
					if cost == 0 {
						deque = append([]string{e.to}, deque...)
					} else {
						deque = append(deque, e.to)
					}
				}
			}
		}
		for _, id := range f.order {
			n := f.nodes[id]
			d, ok := dist[id]
			if !ok {
				continue
			}
			switch n.Kind {
			case KindTransfer:
				out = append(out, Reach{Target: "transfer:" + n.Destination, Node: id, Lang: lang, Presses: d})
			case KindQueue:
				out = append(out, Reach{Target: "queue:" + n.Queue, Node: id, Lang: lang, Presses: d})
			}
		}
	}
	return out
}

// validateRules applies the optional hotline rules of Env: key presses to
// any destination, and a person reachable from every input.
func (l *loader) validateRules(f *Flow) {
	if f.nodes[f.start] == nil {
		return
	}
	if max := l.env.MaxKeyPresses; max > 0 {
		worst := map[string]Reach{}
		for _, r := range f.KeyPresses() {
			if w, ok := worst[r.Node]; !ok || r.Presses > w.Presses {
				worst[r.Node] = r
			}
		}
		for _, id := range f.order {
			if r, ok := worst[id]; ok && r.Presses > max {
				n := f.nodes[id]
				l.add(n.Path, n.Line, "%s needs %d key presses in %s (at most %d)", r.Target, r.Presses, r.Lang, max)
			}
		}
	}
	if !l.env.PersonEscape {
		return
	}
	for _, id := range f.order {
		n := f.nodes[id]
		check := func(field, to, what string) {
			if !f.reachesPerson(to, 0) {
				l.add(n.Path+"."+field, n.fieldLine(field), "%s does not lead to a person (a queue)", what)
			}
		}
		switch n.Kind {
		case KindMenu:
			zero := ""
			for _, o := range n.Options {
				if o.Key == "0" {
					zero = o.Next
				}
			}
			if zero == "" {
				l.add(n.Path+".options", n.fieldLine("options"), "key 0 must reach a person in every menu")
			} else {
				check("options.0", zero, "key 0")
			}
			check("on_exhausted", n.OnExhausted, "running out of retries")
		case KindLanguage, KindSurvey:
			check("zero", n.Zero, "key 0")
		case KindCollect:
			check("on_exhausted", n.OnExhausted, "running out of retries")
		}
	}
}

// reachesPerson reports whether every way on from id, without waiting for
// input, ends in a queue.
func (f *Flow) reachesPerson(id string, depth int) bool {
	n := f.nodes[id]
	if n == nil || depth > 32 {
		return false
	}
	switch n.Kind {
	case KindQueue:
		return true
	case KindPlay, KindSet, KindGoto, KindInclude, KindReturn, KindSay:
		return f.reachesPerson(n.Next, depth+1)
	case KindBranch:
		for _, c := range n.Cases {
			if !f.reachesPerson(c.Next, depth+1) {
				return false
			}
		}
		return f.reachesPerson(n.Default, depth+1)
	}
	return false
}
