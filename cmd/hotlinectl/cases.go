package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/cases"
)

// CasesCmd groups the case commands (工单). Numbers are masked unless a
// full one is asked for with a reason (--reveal caller --reason …), which
// the server writes to the audit trail.
type CasesCmd struct {
	List    CasesListCmd    `cmd:"" help:"List or search cases, newest first (masked)."`
	Show    CasesShowCmd    `cmd:"" help:"Show a case with its path and events (audited)."`
	Note    CasesNoteCmd    `cmd:"" help:"Add a note (sealed at rest)."`
	Status  CasesStatusCmd  `cmd:"" help:"Change a case's status (opened, routed, in_progress, handled, replied, closed, transferred_out)."`
	Assign  CasesAssignCmd  `cmd:"" help:"Route a case to a handling unit, queue or agent (admin, supervisor)."`
	History CasesHistoryCmd `cmd:"" help:"The caller's cases (same number, by its keyed hash)."`
}

// CasesListCmd: cases list.
type CasesListCmd struct {
	From   string `help:"Calls started from (YYYY-MM-DD or RFC 3339, Beijing time)."`
	To     string `help:"Calls started until (a date includes the whole day)."`
	Status string `help:"Only this status."`
	Unit   string `help:"Only this handling unit."`
	Queue  string `help:"Only this queue."`
	Agent  string `help:"Only cases routed to this agent."`
	Caller string `help:"Only this caller's cases (looked up by keyed hash; sent in the request body)."`
	Open   bool   `help:"Only open cases (not closed or transferred out)."`
	Limit  int    `default:"100" help:"At most this many."`
	Offset int    `help:"Skip this many."`
}

func (c *CasesListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Cases(g.ctx, api.CaseSearch{Caller: c.Caller, From: c.From, To: c.To, Status: cases.Status(c.Status),
		Unit: c.Unit, Queue: c.Queue, Agent: c.Agent, OpenOnly: c.Open, Limit: c.Limit, Offset: c.Offset})
	if err != nil {
		return err
	}
	if g.cli.JSON {
		if l == nil {
			l = []*cases.Case{}
		}
		return g.printJSON(api.CaseList{Cases: l})
	}
	printCases(g, l)
	return nil
}

func printCases(g *Globals, l []*cases.Case) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tSTARTED (UTC+8)\tCALLER\tSTATUS\tOUTCOME\tAPPEAL\tQUEUE\tAGENT\tUNIT\tDUE")
	for _, c := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", or(c.Number, "(pending)"), ts(c.Started), c.CallerMasked,
			c.Status, or(string(c.Outcome), "-"), or(string(c.AppealType), "-"), or(c.Queue, "-"), or(c.Agent, "-"),
			or(c.Unit, "-"), or(c.Due, "-"))
	}
	tw.Flush()
	fmt.Fprintf(g.errw, "%d cases\n", len(l))
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// CasesShowCmd: cases show NUMBER [--reveal caller,notes --reason R].
type CasesShowCmd struct {
	Case   string   `arg:"" help:"Case number (20261128-000123) or id."`
	Reveal []string `enum:"caller,notes" help:"Also show the full caller number and/or the notes (needs --reason; audited)."`
	Reason string   `help:"Why the full number or notes are read (written to the audit trail)."`
}

func (c *CasesShowCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.Case(g.ctx, c.Case, c.Reveal, c.Reason)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	w := g.out
	fmt.Fprintf(w, "case      %s (%s)\n", or(v.Number, "(pending)"), v.ID)
	caller := v.CallerMasked
	if v.CallerFull != "" {
		caller = v.CallerFull + "  (full number read: audited)"
	}
	fmt.Fprintf(w, "caller    %s\n", caller)
	fmt.Fprintf(w, "dialled   %s via %s\n", v.Dialled, v.Plane)
	fmt.Fprintf(w, "started   %s  answered %s  ended %s\n", ts(v.Started), ts(v.Answered), ts(v.Ended))
	fmt.Fprintf(w, "status    %s  outcome %s  due %s  closed %s\n", v.Status, or(string(v.Outcome), "-"), or(v.Due, "-"), ts(v.Closed))
	fmt.Fprintf(w, "appeal    %s  domain %s  language %s\n", or(string(v.AppealType), "-"), or(v.Domain, "-"), or(v.Language, "-"))
	fmt.Fprintf(w, "routed    destination %s  queue %s  agent %s  unit %s\n", or(v.Destination, "-"), or(v.Queue, "-"), or(v.Agent, "-"), or(v.Unit, "-"))
	if v.Wait > 0 || v.Talk > 0 {
		fmt.Fprintf(w, "times     wait %s  talk %s\n", v.Wait.Round(time.Second), v.Talk.Round(time.Second))
	}
	if v.Survey > 0 {
		fmt.Fprintf(w, "survey    %d/5\n", v.Survey)
	}
	if v.PartnerRef != "" {
		fmt.Fprintf(w, "partner   %s\n", v.PartnerRef)
	}
	if v.FollowUpOf != "" {
		fmt.Fprintf(w, "follows   %s\n", v.FollowUpOf)
	}
	var path []string
	for _, p := range v.Path {
		s := p.Node
		if p.Digits != "" {
			s += "[" + p.Digits + "]"
		}
		path = append(path, s)
	}
	fmt.Fprintf(w, "ivr path  %s\n", or(strings.Join(path, " > "), "-"))
	fmt.Fprintf(w, "events:\n")
	for _, e := range v.Events {
		fmt.Fprintf(w, "  %s  %-8s %s\n", ts(e.At), e.Kind, eventText(e))
	}
	if len(v.Notes) > 0 {
		fmt.Fprintf(w, "notes (read audited):\n")
		for _, n := range v.Notes {
			fmt.Fprintf(w, "  %s  %s: %s\n", ts(n.At), or(n.Account, "-"), n.Text)
		}
	} else if v.NoteCount > 0 {
		fmt.Fprintf(w, "%d notes (sealed; --reveal notes --reason … to read them)\n", v.NoteCount)
	}
	return nil
}

func eventText(e cases.Event) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("node", e.Node)
	add("digits", e.Digits)
	add("appeal", string(e.AppealType))
	add("domain", e.Domain)
	add("unit", e.Unit)
	add("destination", e.Destination)
	add("queue", e.Queue)
	add("agent", e.Agent)
	add("outcome", string(e.Outcome))
	add("status", string(e.Status))
	add("partner", e.PartnerRef)
	if e.Kind == cases.EventNote {
		parts = append(parts, "(sealed)")
	}
	if e.Survey > 0 {
		add("survey", fmt.Sprint(e.Survey))
	}
	add("by", e.Account)
	return strings.Join(parts, " ")
}

// CasesNoteCmd: cases note NUMBER TEXT ("-" reads the text from stdin).
type CasesNoteCmd struct {
	Case string `arg:"" help:"Case number or id."`
	Text string `arg:"" help:"The note; '-' reads it from standard input (keeps it out of the shell history)."`
}

func (c *CasesNoteCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	text := c.Text
	if text == "-" {
		b, err := readAllStdin()
		if err != nil {
			return err
		}
		text = strings.TrimSpace(b)
	}
	cs, err := cl.AddNote(g.ctx, c.Case, text)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(cs)
	}
	fmt.Fprintf(g.out, "note added to %s\n", cs.Number)
	return nil
}

// CasesStatusCmd: cases status NUMBER STATUS.
type CasesStatusCmd struct {
	Case       string `arg:"" help:"Case number or id."`
	Status     string `arg:"" enum:"opened,routed,in_progress,handled,replied,closed,transferred_out" help:"New status."`
	PartnerRef string `help:"The partner hotline's reference (transferred_out)."`
	Unit       string `help:"Handling unit."`
}

func (c *CasesStatusCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	cs, err := cl.SetStatus(g.ctx, c.Case, api.StatusRequest{Status: cases.Status(c.Status), PartnerRef: c.PartnerRef, Unit: c.Unit})
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(cs)
	}
	fmt.Fprintf(g.out, "%s is now %s\n", cs.Number, cs.Status)
	return nil
}

// CasesAssignCmd: cases assign NUMBER --unit U --agent A.
type CasesAssignCmd struct {
	Case  string `arg:"" help:"Case number or id."`
	Unit  string `help:"Handling unit."`
	Queue string `help:"Queue."`
	Agent string `help:"Agent account."`
}

func (c *CasesAssignCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	cs, err := cl.Assign(g.ctx, c.Case, api.AssignRequest{Unit: c.Unit, Queue: c.Queue, Agent: c.Agent})
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(cs)
	}
	fmt.Fprintf(g.out, "%s: unit %s, queue %s, agent %s, status %s\n", cs.Number, or(cs.Unit, "-"), or(cs.Queue, "-"), or(cs.Agent, "-"), cs.Status)
	return nil
}

// CasesHistoryCmd: cases history NUMBER.
type CasesHistoryCmd struct {
	Case string `arg:"" help:"Case number or id: lists the cases of the same caller."`
}

func (c *CasesHistoryCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.CaseHistory(g.ctx, c.Case)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		if l == nil {
			l = []*cases.Case{}
		}
		return g.printJSON(api.CaseList{Cases: l})
	}
	printCases(g, l)
	return nil
}

// AuditCmd: audit [--case N] [--account A] [--from D] [--to D].
type AuditCmd struct {
	Case    string `help:"Only entries about this case (number or id)."`
	Account string `help:"Only entries of this account."`
	From    string `help:"From (YYYY-MM-DD or RFC 3339)."`
	To      string `help:"Until (a date includes the whole day)."`
	Limit   int    `default:"1000" help:"At most this many."`
}

func (c *AuditCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Audit(g.ctx, client.AuditQuery{Case: c.Case, Account: c.Account, From: c.From, To: c.To, Limit: c.Limit})
	if err != nil {
		return err
	}
	if g.cli.JSON {
		if l == nil {
			l = []cases.AuditEntry{}
		}
		return g.printJSON(api.AuditList{Entries: l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT (UTC+8)\tACCOUNT\tROLE\tCASE\tFIELD\tREASON")
	for _, e := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ts(e.At), e.Account, e.Role, or(e.CaseID, "-"), e.Field, e.Reason)
	}
	return tw.Flush()
}

// ReportCmd groups the reports.
type ReportCmd struct {
	Monthly ReportMonthlyCmd `cmd:"" help:"Monthly evaluation per handling unit and queue (article 24)."`
}

// ReportMonthlyCmd: report monthly --month 2026-11 --format html.
type ReportMonthlyCmd struct {
	Month  string `help:"Month, YYYY-MM (default: this month, Beijing time)."`
	Format string `default:"json" enum:"json,csv,html" help:"json, csv or html (with charts)."`
	Output string `short:"o" help:"Write to this file instead of standard output." type:"path"`
}

func (c *ReportMonthlyCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	month := c.Month
	if month == "" {
		month = time.Now().In(cases.Shanghai()).Format("2006-01")
	}
	b, err := cl.MonthlyReport(g.ctx, month, c.Format)
	if err != nil {
		return err
	}
	if c.Output != "" {
		if err := os.WriteFile(c.Output, b, 0o640); err != nil {
			return err
		}
		fmt.Fprintf(g.errw, "report %s written to %s\n", month, c.Output)
		return nil
	}
	_, err = g.out.Write(b)
	return err
}
