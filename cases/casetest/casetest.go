// Package casetest is the conformance suite every cases.Store passes: run it
// from a store's tests with Run. It only uses the Store interface (and the
// Protector and Revealer that work on any Store).
package casetest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
)

// Env is one fresh store under test.
type Env struct {
	Store     cases.Store
	Protector *cases.Protector
	// Second, when set, opens another store on the same database, as a
	// second hotlined process would (its own connection pool).
	Second func(t *testing.T) cases.Store
}

// NewEnv opens a fresh, empty store whose due dates follow due.
type NewEnv func(t *testing.T, due cases.DuePolicy) Env

// Calendar is a table calendar for tests: weekends off, plus the 2026
// National Day holidays (10-01..10-07) and the 调休 working Sunday
// 2026-09-20 and Saturday 2026-10-10, as in calendars/cn-2026.yaml.
type Calendar struct {
	Holidays map[string]bool
	Workdays map[string]bool
}

// IsWorkingDay implements cases.WorkingDayCalendar.
func (c Calendar) IsWorkingDay(d time.Time) bool {
	s := d.In(cases.Shanghai()).Format("2006-01-02")
	if c.Workdays[s] {
		return true
	}
	if c.Holidays[s] {
		return false
	}
	wd := d.In(cases.Shanghai()).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// NationalDay2026 returns the calendar of the 2026 National Day break.
func NationalDay2026() Calendar {
	c := Calendar{Holidays: map[string]bool{}, Workdays: map[string]bool{"2026-09-20": true, "2026-10-10": true}}
	for d := 1; d <= 7; d++ {
		c.Holidays[fmt.Sprintf("2026-10-%02d", d)] = true
	}
	for d := 25; d <= 27; d++ {
		c.Holidays[fmt.Sprintf("2026-09-%02d", d)] = true // 中秋节
	}
	return c
}

var numberRE = regexp.MustCompile(`^\d{8}-\d{6,}$`)

const caller = "13800138000"

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, cases.Shanghai())
	if err != nil {
		panic(err)
	}
	return t
}

func newCall(id string, started time.Time) cases.NewCall {
	return cases.NewCall{CallID: id, Caller: "+86 138 0013 8000", Dialled: "12345", Plane: "sip",
		Started: started, Answered: started.Add(2 * time.Second), Language: "zh-CN"}
}

func mustCreate(t *testing.T, s cases.Store, n cases.NewCall) *cases.Case {
	t.Helper()
	c, err := s.CreateForCall(context.Background(), n)
	if err != nil {
		t.Fatalf("create %v: %v", n, err)
	}
	return c
}

func mustEvent(t *testing.T, s cases.Store, e cases.Event) {
	t.Helper()
	if err := s.AppendEvent(context.Background(), e); err != nil {
		t.Fatalf("append %v: %v", e, err)
	}
}

// Run runs the suite; newEnv is called once per subtest.
func Run(t *testing.T, newEnv NewEnv) {
	ctx := context.Background()
	due := cases.DuePolicy{Calendar: NationalDay2026(), Days: cases.DefaultDueDays()}

	t.Run("CreateAndGet", func(t *testing.T) {
		env := newEnv(t, due)
		started := at("2026-11-28 00:10") // 2026-11-27 16:10 UTC: the number's day is Shanghai's
		c := mustCreate(t, env.Store, newCall("call-1", started))
		if !numberRE.MatchString(c.Number) || !strings.HasPrefix(c.Number, "20261128-") {
			t.Fatalf("number %q: want 20261128-NNNNNN", c.Number)
		}
		if c.CallerMasked != "138****8000" {
			t.Errorf("masked caller %q", c.CallerMasked)
		}
		if strings.Contains(c.CallerSealed, "0013") || strings.Contains(c.CallerSealed, "8000") || c.CallerSealed == "" {
			t.Errorf("sealed caller %q looks like clear text", c.CallerSealed)
		}
		if want := env.Protector.CallerHash("13800138000"); c.CallerHash != want {
			t.Errorf("caller hash %q, want hash of the normalised number %q", c.CallerHash, want)
		}
		if strings.Contains(c.String(), caller) {
			t.Errorf("String() shows the number: %s", c)
		}
		digits := strings.ReplaceAll(c.Number, "-", "")
		for _, key := range []string{c.ID, c.Number, digits} {
			got, err := env.Store.Get(ctx, key)
			if err != nil {
				t.Fatalf("get %q: %v", key, err)
			}
			if got.ID != c.ID || got.Number != c.Number || got.CallID != "call-1" || got.Status != cases.StatusOpened {
				t.Errorf("get %q: %+v", key, got)
			}
			if !got.Started.Equal(started) || !got.Answered.Equal(started.Add(2*time.Second)) || !got.Ended.IsZero() {
				t.Errorf("times: %v %v %v", got.Started, got.Answered, got.Ended)
			}
			if got.Dialled != "12345" || got.Plane != "sip" || got.Language != "zh-CN" {
				t.Errorf("call data: %+v", got)
			}
		}
		if got, err := env.Store.GetByCall(ctx, "call-1"); err != nil || got.ID != c.ID {
			t.Errorf("get by call: %v, %v", got, err)
		}
		if _, err := env.Store.Get(ctx, "20261128-999999"); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("unknown number: %v, want ErrNotFound", err)
		}
		if _, err := env.Store.CreateForCall(ctx, cases.NewCall{Caller: caller}); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("create without call id: %v, want ErrInvalid", err)
		}
		evs, err := env.Store.Events(ctx, c.ID)
		if err != nil || len(evs) != 1 || evs[0].Kind != cases.EventCreated {
			t.Errorf("events after create: %v, %v", evs, err)
		}
	})

	t.Run("IdempotentPerCallID", func(t *testing.T) {
		env := newEnv(t, due)
		started := at("2026-11-28 09:00")
		a := mustCreate(t, env.Store, newCall("call-x", started))
		b := mustCreate(t, env.Store, newCall("call-x", started.Add(time.Minute)))
		if a.ID != b.ID || a.Number != b.Number {
			t.Fatalf("second create made another case: %s / %s", a, b)
		}
		list, err := env.Store.List(ctx, cases.Filter{})
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %d cases, %v", len(list), err)
		}
	})

	t.Run("NumbersUniqueAcrossWriters", func(t *testing.T) {
		env := newEnv(t, due)
		stores := []cases.Store{env.Store}
		if env.Second != nil {
			stores = append(stores, env.Second(t))
		}
		const perStore = 20
		started := at("2026-11-28 10:00")
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		errs := make(chan error, perStore*len(stores))
		for si, s := range stores {
			for i := 0; i < perStore; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("c-%d-%d", si, i)
					c, err := s.CreateForCall(ctx, newCall(id, started))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if other, dup := seen[c.Number]; dup {
						errs <- fmt.Errorf("number %s given to %s and %s", c.Number, other, id)
					}
					seen[c.Number] = id
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		n := perStore * len(stores)
		for i := 1; i <= n; i++ {
			if _, ok := seen[cases.FormatNumber("20261128", int64(i))]; !ok {
				t.Errorf("number %d of %d missing: numbers are not dense", i, n)
			}
		}
		next := mustCreate(t, env.Store, newCall("after", at("2026-11-29 08:00")))
		if next.Number != "20261129-000001" {
			t.Errorf("first number of a new day: %s", next.Number)
		}
	})

	t.Run("EventsPathAndEnd", func(t *testing.T) {
		env := newEnv(t, due)
		started := at("2026-11-28 11:00")
		c := mustCreate(t, env.Store, newCall("call-p", started))
		steps := []cases.PathStep{{Node: "welcome", Digits: ""}, {Node: "main", Digits: "2"}, {Node: "market", Digits: "1#"}}
		for i, st := range steps {
			e := cases.NewEvent(c.ID, cases.EventPath)
			e.At, e.Node, e.Digits = started.Add(time.Duration(i+3)*time.Second), st.Node, st.Digits
			mustEvent(t, env.Store, e)
			mustEvent(t, env.Store, e) // replayed: no second copy
		}
		r := cases.NewEvent(c.ID, cases.EventRouted)
		r.At, r.Queue, r.Unit = started.Add(10*time.Second), "general", "market-supervision"
		mustEvent(t, env.Store, r)
		en := cases.NewEvent(c.ID, cases.EventEnded)
		en.At, en.Outcome, en.Agent, en.Wait, en.Talk, en.Survey = started.Add(5*time.Minute), cases.OutcomeAnsweredByAgent, "agent-7", 12*time.Second, 4*time.Minute, 4
		mustEvent(t, env.Store, en)

		got, err := env.Store.Get(ctx, c.Number)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Path) != len(steps) {
			t.Fatalf("path %+v, want %d steps", got.Path, len(steps))
		}
		for i, st := range steps {
			if got.Path[i].Node != st.Node || got.Path[i].Digits != st.Digits {
				t.Errorf("step %d: %+v, want %+v", i, got.Path[i], st)
			}
		}
		if got.Status != cases.StatusRouted || got.Queue != "general" || got.Unit != "market-supervision" {
			t.Errorf("after routed: %+v", got)
		}
		if got.Outcome != cases.OutcomeAnsweredByAgent || got.Agent != "agent-7" || got.Wait != 12*time.Second ||
			got.Talk != 4*time.Minute || got.Survey != 4 || !got.Ended.Equal(started.Add(5*time.Minute)) {
			t.Errorf("after ended: %+v", got)
		}
		evs, err := env.Store.Events(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for i, e := range evs {
			kinds = append(kinds, string(e.Kind))
			if i > 0 && e.Seq <= evs[i-1].Seq {
				t.Errorf("events out of order: %v", evs)
			}
		}
		if want := "created path path path routed ended"; strings.Join(kinds, " ") != want {
			t.Errorf("events %q, want %q", strings.Join(kinds, " "), want)
		}
		bad := cases.NewEvent(c.ID, cases.EventSurvey)
		bad.Survey = 6
		if err := env.Store.AppendEvent(ctx, bad); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("survey 6: %v, want ErrInvalid", err)
		}
		if err := env.Store.AppendEvent(ctx, cases.NewEvent("no-such-case", cases.EventPath)); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("event of unknown case: %v, want ErrNotFound", err)
		}
	})

	t.Run("SameEventFromManyWriters", func(t *testing.T) {
		env := newEnv(t, due)
		stores := []cases.Store{env.Store}
		if env.Second != nil {
			stores = append(stores, env.Second(t))
		}
		c := mustCreate(t, env.Store, newCall("call-m", at("2026-11-28 11:30")))
		e := cases.NewEvent(c.ID, cases.EventStatus)
		e.Status = cases.StatusInProgress
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stores[i%len(stores)].AppendEvent(ctx, e); err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		evs, err := env.Store.Events(ctx, c.ID)
		if err != nil || len(evs) != 2 {
			t.Errorf("events after 8 writes of one event: %v, %v", evs, err)
		}
	})

	t.Run("AbandonedBeforeAnswer", func(t *testing.T) {
		env := newEnv(t, due)
		n := newCall("call-a", at("2026-11-28 12:00"))
		n.Answered = time.Time{}
		c := mustCreate(t, env.Store, n)
		e := cases.NewEvent(c.ID, cases.EventEnded)
		e.At, e.Outcome, e.Wait = n.Started.Add(8*time.Second), cases.OutcomeAbandonedBeforeAnswer, 8*time.Second
		mustEvent(t, env.Store, e)
		got, err := env.Store.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Answered.IsZero() || got.Outcome != cases.OutcomeAbandonedBeforeAnswer || got.Wait != 8*time.Second {
			t.Errorf("abandoned call: %+v", got)
		}
	})

	t.Run("DueDateInWorkingDays", func(t *testing.T) {
		env := newEnv(t, due)
		for i, tc := range []struct {
			typ  cases.AppealType
			want string
		}{
			{cases.AppealConsultation, "2026-10-10"}, // 10-08, 10-09, then the 调休 Saturday
			{cases.AppealHelp, "2026-10-15"},
			{cases.AppealSuggestion, "2026-10-15"},
			{cases.AppealComplaint, "2026-10-27"},
			{cases.AppealReport, "2026-10-27"},
		} {
			c := mustCreate(t, env.Store, newCall(fmt.Sprintf("due-%d", i), at("2026-09-30 16:00")))
			e := cases.NewEvent(c.ID, cases.EventClassify)
			e.AppealType, e.Domain = tc.typ, "market"
			mustEvent(t, env.Store, e)
			got, err := env.Store.Get(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Due != tc.want || got.AppealType != tc.typ || got.Domain != "market" {
				t.Errorf("%s opened 2026-09-30: due %q, want %q (%+v)", tc.typ, got.Due, tc.want, got)
			}
		}
		c := mustCreate(t, env.Store, newCall("due-bad", at("2026-09-30 16:00")))
		e := cases.NewEvent(c.ID, cases.EventClassify)
		e.AppealType = "gossip"
		if err := env.Store.AppendEvent(ctx, e); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("unknown appeal type: %v, want ErrInvalid", err)
		}
	})

	t.Run("StatusLifecycle", func(t *testing.T) {
		env := newEnv(t, due)
		started := at("2026-11-28 13:00")
		c := mustCreate(t, env.Store, newCall("call-s", started))
		move := func(to cases.Status, ref string) error {
			e := cases.NewEvent(c.ID, cases.EventStatus)
			e.Status, e.PartnerRef, e.Account, e.At = to, ref, "sup-1", started.Add(time.Hour)
			return env.Store.AppendEvent(ctx, e)
		}
		for _, st := range []cases.Status{cases.StatusRouted, cases.StatusInProgress, cases.StatusHandled, cases.StatusReplied} {
			if err := move(st, ""); err != nil {
				t.Fatalf("to %s: %v", st, err)
			}
		}
		if err := move(cases.StatusInProgress, ""); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("replied -> in progress: %v, want ErrInvalid", err)
		}
		if err := move(cases.StatusTransferredOut, "SC-1"); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("replied -> transferred out: %v, want ErrInvalid", err)
		}
		if err := move(cases.StatusClosed, ""); err != nil {
			t.Fatal(err)
		}
		got, _ := env.Store.Get(ctx, c.ID)
		if got.Status != cases.StatusClosed || !got.Closed.Equal(started.Add(time.Hour)) {
			t.Errorf("closed: %+v", got)
		}

		d := mustCreate(t, env.Store, newCall("call-t", started))
		tr := cases.NewEvent(d.ID, cases.EventStatus)
		tr.Status = cases.StatusTransferredOut
		if err := env.Store.AppendEvent(ctx, tr); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("transfer out without the partner's reference: %v, want ErrInvalid", err)
		}
		tr = cases.NewEvent(d.ID, cases.EventStatus)
		tr.Status, tr.PartnerRef = cases.StatusTransferredOut, "SC-20261128-77"
		mustEvent(t, env.Store, tr)
		got, _ = env.Store.Get(ctx, d.ID)
		if got.Status != cases.StatusTransferredOut || got.PartnerRef != "SC-20261128-77" {
			t.Errorf("transferred out: %+v", got)
		}
	})

	t.Run("ListAndSearch", func(t *testing.T) {
		env := newEnv(t, due)
		other := cases.NewCall{CallID: "o", Caller: "023-6386-2437", Dialled: "12345", Started: at("2026-11-27 09:00")}
		a := mustCreate(t, env.Store, newCall("a", at("2026-11-28 09:00")))
		b := mustCreate(t, env.Store, newCall("b", at("2026-11-28 10:00")))
		o := mustCreate(t, env.Store, other)
		r := cases.NewEvent(b.ID, cases.EventRouted)
		r.Unit, r.Queue = "housing", "q-housing"
		mustEvent(t, env.Store, r)
		l := cases.NewEvent(b.ID, cases.EventLink)
		l.LinkedCase, l.LinkKind = a.ID, cases.LinkMerged
		mustEvent(t, env.Store, l)
		bad := cases.NewEvent(b.ID, cases.EventLink)
		bad.LinkedCase, bad.LinkKind = a.ID, "cousin"
		if err := env.Store.AppendEvent(ctx, bad); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("link kind cousin: %v, want ErrInvalid", err)
		}
		if evs, _ := env.Store.Events(ctx, b.ID); len(evs) == 0 || evs[len(evs)-1].LinkKind != cases.LinkMerged {
			t.Errorf("link event read back: %+v", evs)
		}
		cl := cases.NewEvent(o.ID, cases.EventStatus)
		cl.Status = cases.StatusClosed
		mustEvent(t, env.Store, cl)

		ids := func(f cases.Filter) string {
			t.Helper()
			list, err := env.Store.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range list {
				out = append(out, c.CallID)
			}
			return strings.Join(out, ",")
		}
		open, err := cases.OpenCasesOf(ctx, env.Store, env.Protector, "+8613800138000")
		if err != nil || len(open) != 2 || open[0].ID != b.ID {
			t.Errorf("open cases of the caller: %v, %v", open, err)
		}
		for _, tc := range []struct {
			name string
			f    cases.Filter
			want string
		}{
			{"all newest first", cases.Filter{}, "b,a,o"},
			{"day", cases.Filter{From: at("2026-11-28 00:00"), To: at("2026-11-29 00:00")}, "b,a"},
			{"status", cases.Filter{Status: cases.StatusRouted}, "b"},
			{"unit", cases.Filter{Unit: "housing"}, "b"},
			{"queue", cases.Filter{Queue: "q-housing"}, "b"},
			{"caller", cases.Filter{CallerHash: env.Protector.CallerHash("13800138000")}, "b,a"},
			{"landline caller", cases.Filter{CallerHash: env.Protector.CallerHash("+86 23 63862437")}, "o"},
			{"open only", cases.Filter{OpenOnly: true}, "b,a"},
			{"follow-ups", cases.Filter{FollowUpOf: a.ID}, "b"},
			{"limit", cases.Filter{Limit: 1, Offset: 1}, "a"},
		} {
			if got := ids(tc.f); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
	})

	t.Run("ProtectedReadsAreAudited", func(t *testing.T) {
		env := newEnv(t, due)
		rv := &cases.Revealer{Store: env.Store, Protector: env.Protector}
		c := mustCreate(t, env.Store, newCall("call-r", at("2026-11-28 14:00")))
		note := cases.NewEvent(c.ID, cases.EventNote)
		note.Note, note.Account = "来电人住渝中区解放碑路1号，患有糖尿病", "agent-7"
		mustEvent(t, env.Store, note)
		evs, err := env.Store.Events(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == cases.EventNote && (e.Note != "" || e.NoteSealed == "" || strings.Contains(e.NoteSealed, "解放碑")) {
				t.Errorf("note read back in clear: %+v", e)
			}
		}
		if _, err := rv.Caller(ctx, c.Number, cases.Access{Account: "agent-7", Role: "agent"}); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("read without a reason: %v, want ErrInvalid", err)
		}
		who := cases.Access{Account: "sup-1", Role: "supervisor", Reason: "call back the caller"}
		for i := 0; i < 2; i++ {
			full, err := rv.Caller(ctx, c.Number, who)
			if err != nil || full != "+86 138 0013 8000" {
				t.Fatalf("reveal caller: %q, %v", full, err)
			}
		}
		notes, err := rv.Notes(ctx, c.ID, who)
		if err != nil || len(notes) != 1 || notes[0].Text != note.Note || notes[0].Account != "agent-7" {
			t.Fatalf("reveal notes: %+v, %v", notes, err)
		}
		if err := rv.Opened(ctx, c.ID, who); err != nil {
			t.Fatal(err)
		}
		trail, err := env.Store.ListAudit(ctx, cases.AuditFilter{CaseID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, a := range trail {
			if a.Account != "sup-1" || a.Role != "supervisor" || a.Reason != who.Reason || a.At.IsZero() {
				t.Errorf("audit entry %+v", a)
			}
			fields = append(fields, a.Field)
		}
		if got := strings.Join(fields, ","); got != "caller,caller,notes,case" {
			t.Errorf("audit fields %q, want one entry per read: caller,caller,notes,case", got)
		}
	})

	t.Run("AuditTrail", func(t *testing.T) {
		env := newEnv(t, due)
		t0 := at("2026-11-28 15:00")
		a := cases.AuditEntry{ID: cases.NewID(), At: t0, Account: "aud-1", Role: "auditor", CaseID: "c1", Field: "caller", Reason: "review"}
		for i := 0; i < 2; i++ {
			if err := env.Store.AppendAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		b := a
		b.ID, b.At, b.Account, b.CaseID = cases.NewID(), t0.Add(time.Hour), "sup-2", "c2"
		if err := env.Store.AppendAudit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := env.Store.AppendAudit(ctx, cases.AuditEntry{ID: cases.NewID(), Field: "caller"}); !errors.Is(err, cases.ErrInvalid) {
			t.Errorf("entry without account: %v, want ErrInvalid", err)
		}
		for _, tc := range []struct {
			f    cases.AuditFilter
			want int
		}{
			{cases.AuditFilter{}, 2},
			{cases.AuditFilter{CaseID: "c1"}, 1},
			{cases.AuditFilter{Account: "sup-2"}, 1},
			{cases.AuditFilter{From: t0.Add(time.Minute)}, 1},
			{cases.AuditFilter{To: t0.Add(time.Minute)}, 1},
		} {
			got, err := env.Store.ListAudit(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("%+v: %d entries (%v), want %d", tc.f, len(got), err, tc.want)
			}
		}
		got, _ := env.Store.ListAudit(ctx, cases.AuditFilter{CaseID: "c1"})
		if len(got) != 1 || got[0].ID != a.ID || !got[0].At.Equal(a.At) || got[0].Account != a.Account ||
			got[0].Role != a.Role || got[0].Field != a.Field || got[0].Reason != a.Reason {
			t.Errorf("entry read back %+v, want %+v", got[0], a)
		}
	})
}
