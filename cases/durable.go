package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DurableConfig configures a Durable store.
type DurableConfig struct {
	// Journal receives writes the store could not take in time. Durable
	// owns it from here on and closes it in Close.
	Journal *Journal
	// Keys seal each journal record whole (the journal holds caller
	// numbers and notes).
	Keys *KeyRing
	// Timeout bounds one write to the store before it goes to the journal
	// instead (default 500 ms): the caller is waiting for the greeting.
	Timeout time.Duration
	// RetryEvery is how often the replayer retries a store that is down
	// (default 1 s).
	RetryEvery time.Duration
	// ReserveBlock is how many case numbers Durable reserves ahead from the
	// store (default 16; negative: none). A case created while the store is
	// down takes its number from the block, so the caller can still be told
	// it; without one the case gets its number when it is replayed. Numbers
	// left unused when the process stops or the day ends are gaps.
	ReserveBlock int
	// Log receives outage and replay reports (masked). Discarded when nil.
	Log *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Durable wraps a Store so that a write is never lost and never makes a
// call wait long: each write goes to the store with a short timeout; when
// the store fails or is slow, the write goes to the journal (on disk before
// the call goes on) and later writes follow it there, so that they stay in
// order. A background replayer sends the journaled writes to the store, in
// journal order, once it answers again, then empties the journal. The store
// writes are idempotent (call id, event id, audit id), so a write that
// reached the store after its timeout, or a replay repeated after a crash,
// is not duplicated.
//
// Reads go to the store, except Get and GetByCall of a case this process
// journaled and has not replayed yet, which are answered from memory (the
// case as CreateForCall returned it, without its later events). Cases left
// in the journal by an earlier run are found once replayed.
type Durable struct {
	store Store
	cfg   DurableConfig
	log   *slog.Logger

	mu         sync.Mutex
	journaling bool                // the journal holds unreplayed writes: new writes go there too
	writers    int                 // journal appends under way
	numbers    map[string][]string // reserved case numbers by day
	pending    map[string]*Case    // journaled, not yet replayed cases by id, call id and number
	refilling  bool

	journaled atomic.Int64
	replayed  atomic.Int64
	dropped   atomic.Int64

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Store = (*Durable)(nil)

// journalRecord is one journaled write.
type journalRecord struct {
	Op    string      `json:"op"` // "create", "event", "audit"
	Call  *NewCall    `json:"call,omitempty"`
	Event *Event      `json:"event,omitempty"`
	Audit *AuditEntry `json:"audit,omitempty"`
}

const journalPurpose = "journal"

// NewDurable wraps store and starts the replayer; Close stops it. Records
// left in the journal by an earlier run are replayed first.
func NewDurable(store Store, cfg DurableConfig) (*Durable, error) {
	if cfg.Journal == nil || cfg.Keys == nil {
		return nil, errors.New("cases: durable store needs a journal and keys")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	if cfg.ReserveBlock == 0 {
		cfg.ReserveBlock = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Durable{store: store, cfg: cfg, log: log, numbers: map[string][]string{}, pending: map[string]*Case{}, wake: make(chan struct{}, 1)}
	if t := cfg.Journal.TornBytes(); t > 0 {
		log.Warn("cases: journal had a torn tail (process killed mid-write); cut it off", "bytes", t)
	}
	if cfg.Journal.Size() > cfg.Journal.Checkpoint() {
		d.journaling = true
		log.Info("cases: journal holds writes from an earlier run; replaying", "bytes", cfg.Journal.Size()-cfg.Journal.Checkpoint())
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go d.replayLoop(ctx)
	d.refill(ctx)
	return d, nil
}

// Close stops the replayer and closes the journal. Writes still journaled
// are replayed by the next run.
func (d *Durable) Close() error {
	d.cancel()
	d.wg.Wait()
	return d.cfg.Journal.Close()
}

// Stats counts writes journaled, replayed and dropped (refused by the store
// on replay as invalid; logged) since start.
func (d *Durable) Stats() (journaled, replayed, dropped int64) {
	return d.journaled.Load(), d.replayed.Load(), d.dropped.Load()
}

// Journaling reports whether writes currently go to the journal.
func (d *Durable) Journaling() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.journaling
}

// Drain waits until the journal has been replayed and emptied (graceful
// shutdown, tests).
func (d *Durable) Drain(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		d.kick()
		if !d.Journaling() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cases: drain journal: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (d *Durable) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// write runs op on the store unless the journal is in use, and journals rec
// when the store fails or times out. It returns nil once the write is in
// the store or on disk in the journal.
func (d *Durable) write(ctx context.Context, rec journalRecord, op func(context.Context) error) error {
	d.mu.Lock()
	journaling := d.journaling
	d.mu.Unlock()
	if !journaling {
		// A write must not be lost because the caller hung up and its
		// context ended: only our own timeout bounds it.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
		err := op(wctx)
		cancel()
		if err == nil || Permanent(err) {
			return err
		}
		d.log.Warn("cases: store write failed; journaling", "op", rec.Op, "err", err)
	}
	return d.appendJournal(rec)
}

func (d *Durable) appendJournal(rec journalRecord) error {
	plain, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("cases: journal %s: %w", rec.Op, err)
	}
	sealed, err := d.cfg.Keys.Seal(plain, journalPurpose)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.journaling = true
	d.writers++
	d.mu.Unlock()
	err = d.cfg.Journal.Append([]byte(sealed))
	d.mu.Lock()
	d.writers--
	d.mu.Unlock()
	if err != nil {
		return err
	}
	d.journaled.Add(1)
	d.kick()
	return nil
}

// takeNumber hands out a reserved number of day, if any, and asks for more
// when the block runs low.
func (d *Durable) takeNumber(day string) string {
	if d.cfg.ReserveBlock < 0 {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.numbers {
		if k != day {
			delete(d.numbers, k) // a past day's numbers are no use
		}
	}
	nums := d.numbers[day]
	if len(nums) <= d.cfg.ReserveBlock/2 {
		d.kick() // the replay loop refills
	}
	if len(nums) == 0 {
		return ""
	}
	d.numbers[day] = nums[1:]
	return nums[0]
}

// refill reserves a block of today's numbers when the pool runs low.
func (d *Durable) refill(ctx context.Context) {
	r, ok := d.store.(NumberReserver)
	if !ok || d.cfg.ReserveBlock < 0 {
		return
	}
	day := DayOf(d.cfg.Now())
	d.mu.Lock()
	low := len(d.numbers[day]) <= d.cfg.ReserveBlock/2
	d.mu.Unlock()
	if !low {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	nums, err := r.ReserveNumbers(rctx, day, d.cfg.ReserveBlock)
	cancel()
	if err != nil {
		return // store down: cases get their number on replay
	}
	d.mu.Lock()
	d.numbers[day] = append(d.numbers[day], nums...)
	d.mu.Unlock()
}

// CreateForCall implements Store. The case is in the store or in the
// journal when it returns; a journaled case carries its id, a reserved
// number (if one was left) and the call's data.
func (d *Durable) CreateForCall(ctx context.Context, call NewCall) (*Case, error) {
	if call.CallID == "" {
		return nil, fmt.Errorf("%w: case without a call id", ErrInvalid)
	}
	if call.Started.IsZero() {
		call.Started = d.cfg.Now()
	}
	// Fix id and number before the first try: if a timed-out write lands
	// in the store after all, the replay finds the same case and number.
	if call.CaseID == "" {
		call.CaseID = NewID()
	}
	if call.Created.IsZero() {
		call.Created = d.cfg.Now()
	}
	if call.Number == "" {
		call.Number = d.takeNumber(DayOf(call.Started))
	}
	var got *Case
	err := d.write(ctx, journalRecord{Op: "create", Call: &call}, func(ctx context.Context) error {
		c, err := d.store.CreateForCall(ctx, call)
		got = c
		return err
	})
	if err != nil {
		return nil, err
	}
	if got != nil {
		return got, nil
	}
	now := d.cfg.Now()
	c := &Case{ID: call.CaseID, Number: call.Number, CallID: call.CallID,
		CallerMasked: MaskCaller(call.Caller), Dialled: call.Dialled, Plane: call.Plane,
		Started: call.Started, Answered: call.Answered, Language: call.Language,
		Status: StatusOpened, Created: call.Created, Updated: now}
	d.mu.Lock()
	for _, k := range []string{c.ID, "call:" + c.CallID, c.Number} {
		if k != "" {
			d.pending[k] = c
		}
	}
	d.mu.Unlock()
	cp := *c
	return &cp, nil
}

// pendingCase returns a copy of a journaled case not yet in the store.
func (d *Durable) pendingCase(key string) *Case {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.pending[key]; ok {
		cp := *c
		return &cp
	}
	return nil
}

func (d *Durable) replayedCase(call *NewCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.pending, call.CaseID)
	delete(d.pending, "call:"+call.CallID)
	if call.Number != "" {
		delete(d.pending, call.Number)
	}
}

// AppendEvent implements Store. An event without an id gets one here, so
// that its replay is idempotent.
func (d *Durable) AppendEvent(ctx context.Context, e Event) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.At.IsZero() {
		e.At = d.cfg.Now()
	}
	if err := validateEvent(e); err != nil {
		return err
	}
	return d.write(ctx, journalRecord{Op: "event", Event: &e}, func(ctx context.Context) error {
		return d.store.AppendEvent(ctx, e)
	})
}

// AppendAudit implements Store: audit entries are journaled like the rest.
func (d *Durable) AppendAudit(ctx context.Context, a AuditEntry) error {
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.At.IsZero() {
		a.At = d.cfg.Now()
	}
	return d.write(ctx, journalRecord{Op: "audit", Audit: &a}, func(ctx context.Context) error {
		return d.store.AppendAudit(ctx, a)
	})
}

// Get implements Store. A case created while the store was down is served
// from memory (as CreateForCall returned it) until it is replayed.
func (d *Durable) Get(ctx context.Context, idOrNumber string) (*Case, error) {
	key := idOrNumber
	if n, err := NormaliseNumber(idOrNumber); err == nil {
		key = n
	}
	if c := d.pendingCase(key); c != nil {
		return c, nil
	}
	return d.store.Get(ctx, idOrNumber)
}

// GetByCall implements Store, like Get.
func (d *Durable) GetByCall(ctx context.Context, callID string) (*Case, error) {
	if c := d.pendingCase("call:" + callID); c != nil {
		return c, nil
	}
	return d.store.GetByCall(ctx, callID)
}

// Events implements Store (straight to the store).
func (d *Durable) Events(ctx context.Context, caseID string) ([]Event, error) {
	return d.store.Events(ctx, caseID)
}

// List implements Store (straight to the store).
func (d *Durable) List(ctx context.Context, f Filter) ([]*Case, error) {
	return d.store.List(ctx, f)
}

// ListAudit implements Store (straight to the store).
func (d *Durable) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return d.store.ListAudit(ctx, f)
}

func (d *Durable) replayLoop(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.RetryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		d.refill(ctx)
		if d.Journaling() {
			if err := d.replay(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("cases: journal replay stopped", "err", err)
			}
		}
	}
}

// replay sends journaled writes to the store in order, retrying one that
// fails until the store takes it, then empties the journal when nothing is
// left and no append is under way.
func (d *Durable) replay(ctx context.Context) error {
	j := d.cfg.Journal
	err := j.ReadFrom(j.Checkpoint(), func(p []byte, next int64) error {
		if err := d.replayOne(ctx, p); err != nil {
			return err
		}
		d.replayed.Add(1)
		return j.SetCheckpoint(next)
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writers > 0 {
		return nil
	}
	done, err := j.ResetIfReplayed()
	if err != nil {
		return err
	}
	if done && d.journaling {
		d.journaling = false
		d.log.Info("cases: journal replayed; writing to the store again")
	}
	return nil
}

func (d *Durable) replayOne(ctx context.Context, p []byte) error {
	plain, err := d.cfg.Keys.Open(string(p), journalPurpose)
	if err != nil {
		d.dropped.Add(1)
		d.log.Error("cases: journal record cannot be opened; skipped", "err", err)
		return nil
	}
	var rec journalRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		d.dropped.Add(1)
		d.log.Error("cases: journal record malformed; skipped", "err", err)
		return nil
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 4*d.cfg.Timeout)
		switch {
		case rec.Op == "create" && rec.Call != nil:
			_, err = d.store.CreateForCall(rctx, *rec.Call)
			if err == nil || Permanent(err) {
				d.replayedCase(rec.Call)
			}
		case rec.Op == "event" && rec.Event != nil:
			err = d.store.AppendEvent(rctx, *rec.Event)
		case rec.Op == "audit" && rec.Audit != nil:
			err = d.store.AppendAudit(rctx, *rec.Audit)
		default:
			err = fmt.Errorf("%w: journal op %q", ErrInvalid, rec.Op)
		}
		cancel()
		if err == nil {
			return nil
		}
		if Permanent(err) {
			d.dropped.Add(1)
			d.log.Error("cases: store refused a journaled write; skipped", "op", rec.Op, "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.cfg.RetryEvery):
		}
	}
}
