package cases

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Store keeps cases, their events and the audit trail. It is what the call
// path and the API need, nothing more. Every write is idempotent by its key
// (the call id for CreateForCall, the event or audit id otherwise), so a
// write journaled by Durable and replayed after a crash never duplicates.
type Store interface {
	// CreateForCall opens the case of a call, durably before it returns.
	// Calling it again with the same call id returns the existing case.
	CreateForCall(ctx context.Context, call NewCall) (*Case, error)
	// AppendEvent appends an event to a case and applies it to the case's
	// summary. An event id seen before is a no-op.
	AppendEvent(ctx context.Context, e Event) error
	// Get returns a case by id or by number (either form), with its path.
	Get(ctx context.Context, idOrNumber string) (*Case, error)
	// GetByCall returns the case of a call id.
	GetByCall(ctx context.Context, callID string) (*Case, error)
	// Events returns a case's events in order, notes sealed.
	Events(ctx context.Context, caseID string) ([]Event, error)
	// List returns cases matching f, newest first.
	List(ctx context.Context, f Filter) ([]*Case, error)
	// AppendAudit appends to the audit trail (idempotent by entry id).
	// There is no way to edit or delete an entry.
	AppendAudit(ctx context.Context, a AuditEntry) error
	// ListAudit returns audit entries matching f, oldest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// NumberReserver is implemented by stores that can hand out a block of case
// numbers for a day ahead of use. Durable uses it to give a number to a case
// it has to journal while the store is down. Unused reserved numbers leave
// gaps in a day's sequence.
type NumberReserver interface {
	ReserveNumbers(ctx context.Context, day string, n int) ([]string, error)
}

// Filter selects cases. Zero fields do not filter.
type Filter struct {
	From, To   time.Time // start of the call in [From, To)
	Status     Status
	Unit       string
	Queue      string
	Agent      string
	CallerHash string // Protector.CallerHash of the number looked for
	FollowUpOf string
	OpenOnly   bool // status is not closed or transferred out
	Limit      int  // default 100, at most 10000
	Offset     int
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	CaseID   string
	Account  string
	From, To time.Time
	Limit    int // default 1000
}

var (
	// ErrNotFound reports an unknown case.
	ErrNotFound = errors.New("cases: not found")
	// ErrInvalid reports a write the store refuses whatever its state
	// (a missing call id, a bad status move, a survey score out of range).
	// Durable does not journal such a write.
	ErrInvalid = errors.New("cases: invalid")
)

// Permanent reports whether err is a refusal that retrying will not cure.
func Permanent(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound)
}

// NewID returns a new time-ordered id (UUIDv7, RFC 9562) for a case, event
// or audit entry.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// NewEvent returns an event of kind for a case, with a fresh id and time.
func NewEvent(caseID string, kind EventKind) Event {
	return Event{ID: NewID(), CaseID: caseID, Kind: kind, At: time.Now()}
}

// OpenCasesOf returns a caller's open cases, newest first: the flow offers
// a caller with an open case to follow it up (and a repeated appeal about
// the same matter is linked to it with an EventLink instead of opening a
// second case: 重复诉求并单处理).
func OpenCasesOf(ctx context.Context, s Store, p *Protector, caller string) ([]*Case, error) {
	h := p.CallerHash(caller)
	if h == "" {
		return nil, nil
	}
	return s.List(ctx, Filter{CallerHash: h, OpenOnly: true})
}
