package flows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// Loader compiles flow source into a runnable flow, or fails with an
// *ivr.ValidationError listing every problem. Use LoaderFor.
type Loader func(src []byte) (*ivr.Flow, error)

// LoaderFor binds ivr.Load to the process's environment (prompts,
// destinations, queues, calendars).
func LoaderFor(env ivr.Env) Loader {
	return func(src []byte) (*ivr.Flow, error) { return ivr.Load(src, env) }
}

// Checker returns the Checker that validates with this loader, so that what
// the store lets through publish is exactly what Live can load.
func (ld Loader) Checker() Checker {
	return func(src []byte) []Problem {
		_, err := ld(src)
		return ProblemsOf(err)
	}
}

// ProblemsOf turns a loader error into problems: the list of an
// *ivr.ValidationError, or one problem carrying any other error's text.
func ProblemsOf(err error) []Problem {
	if err == nil {
		return nil
	}
	ve, ok := ivr.AsValidationError(err)
	if !ok || len(ve.Problems) == 0 {
		return []Problem{{Message: err.Error()}}
	}
	out := make([]Problem, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = Problem{Path: p.Path, Line: p.Line, Message: p.Message}
	}
	return out
}

// DefaultPollInterval is how often Live looks for publishes made by other
// processes. A publish through this process's Store is seen at once.
const DefaultPollInterval = 250 * time.Millisecond

// Live serves the published version of every flow to the call path, from
// memory, and follows publishes and rollbacks (by any process sharing the
// store) within a poll interval.
//
// Calls pin their flow: Current returns an immutable *ivr.Flow, and a call
// keeps running the flow it started with to its end. A later publish only
// changes what Current returns to the calls that start after it.
type Live struct {
	store    *Store
	load     Loader
	log      *slog.Logger
	interval time.Duration

	mu  sync.RWMutex
	cur map[string]Pinned
	// failed remembers versions this process could not load (its
	// environment differs from the publisher's), so the error is logged once.
	failed map[string]int
}

// Pinned is a flow as a call holds it: the compiled flow and its version.
type Pinned struct {
	Flow    *ivr.Flow
	Version int
}

// NewLive returns a Live over store. Call Refresh once before taking calls,
// then Run in a goroutine.
func NewLive(store *Store, load Loader, logger *slog.Logger) *Live {
	if logger == nil {
		logger = slog.Default()
	}
	return &Live{store: store, load: load, log: logger, interval: DefaultPollInterval,
		cur: map[string]Pinned{}, failed: map[string]int{}}
}

// SetPollInterval changes the poll interval (before Run).
func (l *Live) SetPollInterval(d time.Duration) {
	if d > 0 {
		l.interval = d
	}
}

// Current returns the flow a new call on flowID starts with and its version,
// or nil and 0 when no version of flowID is published (or none could be
// loaded). The call must keep this *ivr.Flow for its whole life: that is how
// a call stays on the version it started on.
func (l *Live) Current(flowID string) (*ivr.Flow, int) {
	p := l.Pin(flowID)
	return p.Flow, p.Version
}

// Pin is Current as one value.
func (l *Live) Pin(flowID string) Pinned {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cur[flowID]
}

// Refresh reads the active versions once and loads those that changed. A
// version that fails to load here (this process's prompts, destinations or
// calendars differ from the publisher's) is logged and skipped: the flow
// keeps its previous version.
func (l *Live) Refresh(ctx context.Context) error {
	active, err := l.store.active(ctx)
	if err != nil {
		return fmt.Errorf("flows: live refresh: %w", err)
	}
	var errs []error
	for id, v := range active {
		l.mu.RLock()
		have, failed := l.cur[id].Version, l.failed[id]
		l.mu.RUnlock()
		if have == v || failed == v {
			continue
		}
		ver, err := l.store.Get(ctx, id, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := l.load([]byte(ver.Source))
		if err != nil {
			l.mu.Lock()
			l.failed[id] = v
			l.mu.Unlock()
			l.log.Error("flows: published version cannot be loaded here; keeping the previous one",
				"flow", id, "version", v, "kept", have, "err", err)
			errs = append(errs, fmt.Errorf("flows: load %s v%d: %w", id, v, err))
			continue
		}
		l.mu.Lock()
		l.cur[id] = Pinned{Flow: f, Version: v}
		delete(l.failed, id)
		l.mu.Unlock()
		l.log.Info("flows: new calls now start on", "flow", id, "version", v, "previous", have)
	}
	return errors.Join(errs...)
}

// Run refreshes every poll interval, and at once after a publish through
// this process's Store, until ctx ends.
func (l *Live) Run(ctx context.Context) error {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-l.store.published:
		}
		if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Debug("flows: live refresh", "err", err)
		}
	}
}
