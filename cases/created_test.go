package cases_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
)

// A case journaled during an outage keeps the time it was opened when it is
// replayed, so its created event stays before the events that followed it.
func TestDurableReplayKeepsCreatedTime(t *testing.T) {
	ctx := context.Background()
	p := testProtector(t)
	real, _ := openSQL(t, dsns(t)["sqlite"](t), p, cases.DuePolicy{})
	fs := &faultyStore{Store: real}
	d := newDurable(t, fs, p, filepath.Join(t.TempDir(), "journal"), 4)
	defer d.Close()
	fs.mode.Store(down)
	opened := time.Now()
	c := call(t, d, "journaled", opened)
	time.Sleep(50 * time.Millisecond) // the replay comes later
	fs.mode.Store(up)
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := d.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	got := checkCall(t, real, c)
	if got.Created.After(c.Created) || !got.Created.Equal(c.Created.Truncate(time.Microsecond)) {
		t.Errorf("replayed case created %v, the call opened it at %v", got.Created, c.Created)
	}
	evs, err := real.Events(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].At.Before(evs[i-1].At) {
			t.Errorf("event %d (%s at %v) before event %d (%s at %v)", i, evs[i].Kind, evs[i].At, i-1, evs[i-1].Kind, evs[i-1].At)
		}
	}
}
