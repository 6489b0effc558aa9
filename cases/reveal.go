package cases

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Access names who reads protected data and why (article 22: 谁管理、谁使用、
// 谁负责 — every access is attributable to a named account).
type Access struct {
	Account string
	Role    string
	Reason  string
}

// Revealer is the only way to read a caller's full number or a case's notes.
// Every read first writes one audit entry; when the audit write fails,
// nothing is revealed. Whether the account may read the case at all (an
// agent only the cases routed to them) is the API's decision, made before.
type Revealer struct {
	Store     Store
	Protector *Protector
	Now       func() time.Time
}

func (r *Revealer) audit(ctx context.Context, caseID, field string, who Access) error {
	if who.Account == "" || who.Reason == "" {
		return fmt.Errorf("%w: reading %s needs an account and a reason", ErrInvalid, field)
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return r.Store.AppendAudit(ctx, AuditEntry{ID: NewID(), At: now(), Account: who.Account, Role: who.Role,
		CaseID: caseID, Field: field, Reason: who.Reason})
}

// Caller returns the full calling number of a case (by id or number) and
// writes one audit entry for the read.
func (r *Revealer) Caller(ctx context.Context, idOrNumber string, who Access) (string, error) {
	c, err := r.Store.Get(ctx, idOrNumber)
	if err != nil {
		return "", err
	}
	if err := r.audit(ctx, c.ID, "caller", who); err != nil {
		return "", err
	}
	plain, err := r.Protector.Keys.Open(c.CallerSealed, callerPurpose(c.ID))
	if err != nil {
		return "", fmt.Errorf("cases: caller of %s: %w", c.Number, err)
	}
	return string(plain), nil
}

// Note is a note in clear, as Notes returns it.
type Note struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
	Account string    `json:"account,omitempty"`
	Text    string    `json:"text"`
}

// Notes returns a case's notes in clear and writes one audit entry.
func (r *Revealer) Notes(ctx context.Context, idOrNumber string, who Access) ([]Note, error) {
	c, err := r.Store.Get(ctx, idOrNumber)
	if err != nil {
		return nil, err
	}
	if err := r.audit(ctx, c.ID, "notes", who); err != nil {
		return nil, err
	}
	evs, err := r.Store.Events(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var out []Note
	var errs []error
	for _, e := range evs {
		if e.NoteSealed == "" {
			continue
		}
		plain, err := r.Protector.Keys.Open(e.NoteSealed, notePurpose(e.ID))
		if err != nil {
			errs = append(errs, fmt.Errorf("note %s: %w", e.ID, err))
			continue
		}
		out = append(out, Note{EventID: e.ID, At: e.At, Account: e.Account, Text: string(plain)})
	}
	return out, errors.Join(errs...)
}

// Opened records that a person opened a case (issue 5: every case opened
// by a person is audited). The API calls it when it shows a case.
func (r *Revealer) Opened(ctx context.Context, caseID string, who Access) error {
	return r.audit(ctx, caseID, "case", who)
}
