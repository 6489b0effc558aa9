package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/ivr"
)

// FlowsCmd groups the flow commands.
type FlowsCmd struct {
	List     FlowsListCmd     `cmd:"" help:"List the flows and their active versions."`
	Get      FlowsGetCmd      `cmd:"" help:"Print a version's YAML (default: the active one)."`
	Put      FlowsPutCmd      `cmd:"" help:"Save a flow file as a new draft version (even an invalid one)."`
	Validate FlowsValidateCmd `cmd:"" help:"Validate a flow file or a stored version; every problem with its node path and line."`
	Publish  FlowsPublishCmd  `cmd:"" help:"Publish a version (validated first; an invalid one is refused)."`
	Rollback FlowsRollbackCmd `cmd:"" help:"Make an earlier published version active again."`
	Diff     FlowsDiffCmd     `cmd:"" help:"Unified diff of two versions (default: active to latest)."`
	History  FlowsHistoryCmd  `cmd:"" help:"Who changed what when."`
	Simulate FlowsSimulateCmd `cmd:"" help:"Simulate a call (no phone): prompts played, branches taken, final action."`
}

func (g *Globals) printJSON(v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := g.out.Write(buf.Bytes())
		return err
	}
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(api.Beijing).Format("2006-01-02 15:04:05")
}

// printProblems prints problems one a line, as editors expect.
func printProblems(w io.Writer, ps []flows.Problem) {
	for _, p := range ps {
		fmt.Fprintln(w, "  "+p.String())
	}
}

// explain prints a server error; an invalid flow gets its problems listed.
func (g *Globals) explain(err error) error {
	var se *client.StatusError
	if errors.As(err, &se) && len(se.Body.Problems) > 0 {
		if g.cli.JSON {
			g.printJSON(se.Body)
			return exitError(1)
		}
		fmt.Fprintf(g.errw, "hotlinectl: %s\n", se.Body.Message)
		printProblems(g.errw, se.Body.Problems)
		return exitError(1)
	}
	return err
}

// FlowsListCmd: flows list.
type FlowsListCmd struct{}

func (c *FlowsListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.ListFlows(g.ctx)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(api.FlowList{Flows: l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACTIVE\tLATEST\tUPDATED\tBY")
	for _, f := range l {
		active := "-"
		if f.ActiveVersion > 0 {
			active = fmt.Sprintf("v%d", f.ActiveVersion)
		}
		fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\n", f.ID, active, f.LatestVersion, ts(f.UpdatedAt), f.UpdatedBy)
	}
	return tw.Flush()
}

// FlowsGetCmd: flows get ID [--version N].
type FlowsGetCmd struct {
	ID      string `arg:"" help:"Flow id, e.g. chongqing-12345."`
	Version int    `short:"v" help:"Version (default: the active one)."`
}

func (c *FlowsGetCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.GetFlow(g.ctx, c.ID, c.Version)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	// Only the YAML on stdout, so that `get > file.yaml` round-trips; the
	// version line goes to stderr.
	fmt.Fprintf(g.errw, "# %s v%d (%s) by %s at %s\n", v.FlowID, v.Version, v.State, v.CreatedBy, ts(v.CreatedAt))
	_, err = io.WriteString(g.out, v.Source)
	return err
}

// FlowsPutCmd: flows put FILE --id ID.
type FlowsPutCmd struct {
	File    string `arg:"" type:"existingfile" help:"Flow YAML file."`
	ID      string `help:"Flow id, e.g. chongqing-12345 (default: the file's name: field)."`
	Comment string `short:"m" help:"What changed and why."`
}

func (c *FlowsPutCmd) Run(g *Globals) error {
	src, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	id := c.ID
	if id == "" {
		var head struct {
			Name string `yaml:"name"`
		}
		if yaml.Unmarshal(src, &head) != nil || head.Name == "" {
			return fmt.Errorf("%s has no name: field; give --id", c.File)
		}
		id = head.Name
	}
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.SaveDraft(g.ctx, id, src, c.Comment)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.out, "saved %s v%d as a draft\n", v.Version.FlowID, v.Version.Version)
	if !v.Valid {
		fmt.Fprintf(g.out, "it is invalid and cannot be published until fixed (%d problems):\n", len(v.Problems))
		printProblems(g.out, v.Problems)
	} else {
		fmt.Fprintf(g.out, "valid; publish it with: hotlinectl flows publish %s --version %d\n", v.Version.FlowID, v.Version.Version)
	}
	return nil
}

// FlowsValidateCmd: flows validate FILE | --id ID [--version N].
type FlowsValidateCmd struct {
	File    string `arg:"" optional:"" type:"existingfile" help:"Flow YAML file (or use --id)."`
	ID      string `help:"Validate a stored flow instead of a file."`
	Version int    `short:"v" help:"Stored version (default: the latest)."`
	Offline bool   `help:"Validate the FILE here, without a server: syntax, graph, prompts and languages (destinations, queues and calendars are the server's to check). Also what happens when no server answers."`
}

func (c *FlowsValidateCmd) Run(g *Globals) error {
	var res *api.Validation
	switch {
	case c.File != "" && c.ID != "":
		return errors.New("give a FILE or --id, not both")
	case c.File == "" && c.ID == "":
		return errors.New("give a FILE or --id")
	case c.Offline && c.File == "":
		return errors.New("--offline validates a FILE")
	case c.ID != "":
		cl, err := g.Client()
		if err != nil {
			return err
		}
		if res, err = cl.ValidateStored(g.ctx, c.ID, c.Version); err != nil {
			return g.explain(err)
		}
	}
	if c.File != "" {
		src, err := os.ReadFile(c.File)
		if err != nil {
			return err
		}
		if !c.Offline {
			// The server knows the configured destinations, queues and
			// calendars; without one (or without a token) validate here.
			cl, err := g.Client()
			if err == nil {
				res, err = cl.Validate(g.ctx, src)
			}
			var se *client.StatusError
			if errors.As(err, &se) {
				return g.explain(err)
			}
			if err != nil {
				fmt.Fprintf(g.errw, "hotlinectl: no server to ask (%v); validating offline\n", err)
				c.Offline = true
			}
		}
		if c.Offline {
			env, err := offlineEnv(c.File, src)
			if err != nil {
				return err
			}
			ps := flows.LoaderFor(env).Checker()(src)
			res = &api.Validation{Valid: len(ps) == 0, Problems: ps}
		}
	}
	if res.Problems == nil {
		res.Problems = []flows.Problem{}
	}
	if g.cli.JSON {
		if err := g.printJSON(res); err != nil {
			return err
		}
	} else {
		what := c.File
		if c.ID != "" {
			what = c.ID
			if res.Version != nil {
				what = fmt.Sprintf("%s v%d", c.ID, res.Version.Version)
			}
		}
		if c.Offline {
			what += " (offline: destinations, queues and calendars not checked)"
		}
		if res.Valid {
			fmt.Fprintf(g.out, "%s: valid\n", what)
		} else {
			fmt.Fprintf(g.out, "%s: invalid, %d problems:\n", what, len(res.Problems))
			printProblems(g.out, res.Problems)
		}
	}
	if !res.Valid {
		return exitError(1)
	}
	return nil
}

// FlowsPublishCmd: flows publish ID [--version N].
type FlowsPublishCmd struct {
	ID      string `arg:"" help:"Flow id."`
	Version int    `short:"v" help:"Version to publish (default: the latest)."`
}

func (c *FlowsPublishCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.Publish(g.ctx, c.ID, c.Version)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.out, "%s v%d is published: new calls start on it within a second; calls in progress keep their version\n", v.FlowID, v.Version)
	return nil
}

// FlowsRollbackCmd: flows rollback ID [--to N].
type FlowsRollbackCmd struct {
	ID string `arg:"" help:"Flow id."`
	To int    `help:"Earlier published version (default: the one before the active one)."`
}

func (c *FlowsRollbackCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.Rollback(g.ctx, c.ID, c.To)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.out, "%s rolled back to v%d: new calls start on it within a second\n", v.FlowID, v.Version)
	return nil
}

// FlowsDiffCmd: flows diff ID [--from A] [--to B].
type FlowsDiffCmd struct {
	ID   string `arg:"" help:"Flow id."`
	From int    `help:"Old version (default: the active one)."`
	To   int    `help:"New version (default: the latest)."`
}

func (c *FlowsDiffCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	d, err := cl.Diff(g.ctx, c.ID, c.From, c.To)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(d)
	}
	if d.Diff == "" {
		fmt.Fprintf(g.out, "%s v%d and v%d are the same\n", d.ID, d.From, d.To)
		return nil
	}
	_, err = io.WriteString(g.out, d.Diff)
	return err
}

// FlowsHistoryCmd: flows history ID.
type FlowsHistoryCmd struct {
	ID string `arg:"" help:"Flow id."`
}

func (c *FlowsHistoryCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	h, err := cl.History(g.ctx, c.ID)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(api.History{ID: c.ID, History: h})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHEN (UTC+8)\tWHO\tACTION\tVERSION\tNOTE")
	for _, e := range h {
		what := fmt.Sprintf("v%d", e.Version)
		if e.Action == flows.ActionPublish || e.Action == flows.ActionRollback {
			if e.Previous > 0 {
				what = fmt.Sprintf("v%d -> v%d", e.Previous, e.Version)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, ts(e.At), e.Actor, e.Action, what, e.Note)
	}
	return tw.Flush()
}

// FlowsSimulateCmd: flows simulate FILE | --id ID [--version N] --caller
// --at --digits --lang.
type FlowsSimulateCmd struct {
	File    string   `arg:"" optional:"" type:"existingfile" help:"Flow YAML file (or use --id)."`
	ID      string   `help:"Simulate a stored flow (its active version, or --version)."`
	Version int      `short:"v" help:"Stored version."`
	Caller  string   `default:"13800138000" help:"Calling number (masked in the output)."`
	At      string   `help:"Simulated time, e.g. 2026-10-01T10:00+08:00 (default: now; without an offset, Beijing time)."`
	Digits  []string `sep:"," help:"Keys pressed at each input point, comma-separated (e.g. 1,3; an empty item presses nothing)."`
	Lang    string   `help:"Preselected language (zh-CN, en)."`
	Dialled string   `help:"Service number dialled (default 12345)."`
	Router  string   `name:"router" enum:",returned,left,failed" default:"" help:"What the simulated router answers: returned (default), left, failed."`
}

func (c *FlowsSimulateCmd) Run(g *Globals) error {
	req := api.SimulateRequest{ID: c.ID, Version: c.Version, Caller: c.Caller, At: c.At, Digits: c.Digits, Lang: c.Lang, Dialled: c.Dialled, RouterOutcome: c.Router}
	switch {
	case c.File != "" && c.ID != "":
		return errors.New("give a FILE or --id, not both")
	case c.File == "" && c.ID == "":
		return errors.New("give a FILE or --id")
	}
	if c.File != "" {
		src, err := os.ReadFile(c.File)
		if err != nil {
			return err
		}
		req.Source = string(src)
	}
	cl, err := g.Client()
	if err != nil {
		return err
	}
	raw, err := cl.Simulate(g.ctx, req)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(raw)
	}
	var res ivr.SimResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("simulation answer: %w", err)
	}
	printSim(g.out, &res)
	return nil
}

func printSim(w io.Writer, r *ivr.SimResult) {
	fmt.Fprintf(w, "flow %s, caller %s, %s, language %s\n", r.Flow, r.Caller, r.At.In(api.Beijing).Format("2006-01-02 15:04 Mon (UTC+8)"), r.Lang)
	for i, s := range r.Steps {
		line := fmt.Sprintf("%2d. %-10s %s", i+1, s.Kind, s.Node)
		if len(s.Prompts) > 0 {
			line += "  plays " + strings.Join(s.Prompts, ", ")
		}
		if s.Digits != "" {
			line += "  keys " + s.Digits
		}
		if s.Branch != "" {
			line += "  -> " + s.Branch
		}
		if s.Decision != nil {
			line += fmt.Sprintf("  => %s %s", s.Decision.Kind, s.Decision.ID)
		}
		if s.Next != "" {
			line += "  next " + s.Next
		}
		fmt.Fprintln(w, line)
	}
	final := r.Final.Kind
	if r.Final.ID != "" {
		final += " " + r.Final.ID
	}
	fmt.Fprintf(w, "final: %s (end: %s)", final, r.End)
	if r.Survey > 0 && r.Survey <= len(ivr.SurveyLevels) {
		fmt.Fprintf(w, ", survey %d %s", r.Survey, ivr.SurveyLevels[r.Survey-1])
	}
	fmt.Fprintln(w)
}
