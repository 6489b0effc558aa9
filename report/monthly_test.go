package report_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/report"
	"github.com/cq12345/hotline/sqldb"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, cases.Shanghai())
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// fixture: four calls to the housing queue / unit, one self-service call,
// one abandoned before answer.
func fixture(t *testing.T) []*cases.Case {
	d := at(t, "2026-11-10 10:00")
	closed := func(s string) time.Time { return at(t, s) }
	return []*cases.Case{
		{Unit: "housing", Queue: "q-housing", Answered: d, Outcome: cases.OutcomeAnsweredByAgent, Wait: 10 * time.Second, Talk: 100 * time.Second, Survey: 5,
			Due: "2026-11-13", Status: cases.StatusClosed, Closed: closed("2026-11-12 09:00")},
		{Unit: "housing", Queue: "q-housing", Answered: d, Outcome: cases.OutcomeAnsweredByAgent, Wait: 18 * time.Second, Talk: 200 * time.Second, Survey: 2,
			Due: "2026-11-13", Status: cases.StatusClosed, Closed: closed("2026-11-16 09:00")},
		{Unit: "housing", Queue: "q-housing", Answered: d, Outcome: cases.OutcomeAnsweredByAgent, Wait: 30 * time.Second, Talk: 300 * time.Second,
			Due: "2026-12-20", Status: cases.StatusInProgress},
		{Unit: "housing", Queue: "q-housing", Answered: d, Outcome: cases.OutcomeAbandoned, Wait: 42 * time.Second, Due: "2026-11-13", Status: cases.StatusRouted},
		{Answered: d, Outcome: cases.OutcomeSelfService, Survey: 4},
		{Outcome: cases.OutcomeAbandonedBeforeAnswer},
	}
}

func TestCompute(t *testing.T) {
	m := report.Compute("2026-11", fixture(t), at(t, "2026-12-01 08:00"))
	o := m.Overall
	if o.Calls != 6 || o.Connected != 5 || o.Offered != 4 || o.AnsweredByAgent != 3 || o.Abandoned != 2 {
		t.Fatalf("overall counts: %+v", o)
	}
	if o.Within15s != 1 || o.Within20s != 2 || o.Within15sRate != 0.25 || o.AnswerRate != 0.75 {
		t.Errorf("service level: %+v", o)
	}
	if o.AvgWaitSec != 25 || o.AvgHandleSec != 200 {
		t.Errorf("averages: wait %v handle %v, want 25 and 200", o.AvgWaitSec, o.AvgHandleSec)
	}
	if o.Satisfaction != [5]int{0, 1, 0, 1, 1} || o.Rated != 3 || o.SatisfiedRate != 2.0/3 {
		t.Errorf("satisfaction: %v rated %d rate %v", o.Satisfaction, o.Rated, o.SatisfiedRate)
	}
	// Due by 2026-12-01: the three due 11-13; one closed in time, one late,
	// one still routed. The case due 12-20 is not yet due.
	if o.Due != 3 || o.ClosedOnTime != 1 {
		t.Errorf("due %d, on time %d; want 3 and 1", o.Due, o.ClosedOnTime)
	}
	if len(m.Units) != 2 || m.Units[0].Group != "housing" || m.Units[0].Calls != 4 || m.Units[1].Group != report.Unassigned {
		t.Errorf("units: %+v", m.Units)
	}
	if len(m.Queues) != 2 || m.Queues[0].Group != "q-housing" || m.Queues[0].AnswerRate != 0.75 || m.Queues[1].Group != report.NoQueue {
		t.Errorf("queues: %+v", m.Queues)
	}
}

func TestRender(t *testing.T) {
	cs := fixture(t)
	cs[0].Unit = `<script>alert(1)</script>`
	m := report.Compute("2026-11", cs, at(t, "2026-12-01 08:00"))

	var j bytes.Buffer
	if err := m.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back report.Monthly
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || back.Overall.Calls != 6 || len(back.Units) != 3 {
		t.Fatalf("JSON round trip: %+v, %v", back.Overall, err)
	}

	var c bytes.Buffer
	if err := m.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+1+3+2 || len(rows[1]) != len(report.CSVHeader) || rows[1][1] != "all" || rows[1][3] != "6" {
		t.Fatalf("CSV: %v", rows)
	}

	var h bytes.Buffer
	if err := m.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	html := h.String()
	for _, want := range []string{"<svg", "q-housing", "非常满意", "2026-11", "&lt;script&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("a unit name was not escaped")
	}
	for _, f := range []string{"json", "csv", "html"} {
		var b bytes.Buffer
		if err := m.Write(&b, f); err != nil || b.Len() == 0 {
			t.Errorf("Write %s: %v", f, err)
		}
	}
	if err := m.Write(&bytes.Buffer{}, "pdf"); err == nil {
		t.Error("format pdf accepted")
	}
}

func TestBuildFromStore(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k, h := make([]byte, 32), make([]byte, 32)
	rand.Read(k)
	rand.Read(h)
	kr, _ := cases.NewKeyRing("k", map[string][]byte{"k": k})
	p, _ := cases.NewProtector(kr, h)
	s, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: p})
	if err != nil {
		t.Fatal(err)
	}
	for i, started := range []string{"2026-10-31 23:59", "2026-11-01 00:00", "2026-11-15 12:00", "2026-11-30 23:59", "2026-12-01 00:00"} {
		st := at(t, started)
		c, err := s.CreateForCall(ctx, cases.NewCall{CallID: started, Caller: "13800138000", Started: st, Answered: st})
		if err != nil {
			t.Fatal(err)
		}
		e := cases.NewEvent(c.ID, cases.EventEnded)
		e.Outcome, e.Queue, e.Wait, e.Talk, e.Survey = cases.OutcomeAnsweredByAgent, "general", time.Duration(i)*5*time.Second, time.Minute, 5
		if err := s.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	m, err := report.Build(ctx, s, "2026-11", at(t, "2026-12-02 00:00"))
	if err != nil {
		t.Fatal(err)
	}
	// Calls 2..4 are in November (Asia/Shanghai); waits 5, 10, 15 s.
	if m.Overall.Calls != 3 || m.Overall.AnsweredByAgent != 3 || m.Overall.Within15s != 3 || m.Overall.AvgWaitSec != 10 {
		t.Errorf("overall %+v", m.Overall)
	}
	if _, err := report.Build(ctx, s, "2026-13", time.Now()); err == nil {
		t.Error("bad month accepted")
	}
}
