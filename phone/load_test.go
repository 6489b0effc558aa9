package phone

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	lib := loadLib(t)
	uas := newTestUAS(t, lib)
	p := newTestPhone(t, lib)
	var progress []LoadProgress
	rep := p.Load(context.Background(), LoadConfig{
		Dial:  DialOptions{Target: uas.addr, To: "12345", From: "13800138000"},
		Calls: 20, Rate: 40, Hold: 1500 * time.Millisecond,
		Digits: []byte("4"), DTMFAfter: 300 * time.Millisecond,
	}, func(lp LoadProgress) { progress = append(progress, lp) })
	b, _ := json.Marshal(rep)
	if rep.SetupsOK != 20 || rep.SetupsFailed != 0 || rep.EndedBy[EndedLocal] != 20 {
		t.Fatalf("report %s", b)
	}
	if rep.MaxConcurrent < 10 || rep.SetupLatency.Count != 20 || rep.SetupLatency.P99 <= 0 {
		t.Errorf("concurrency/setup: %s", b)
	}
	if rep.PacketsRecv < 20*40 || rep.PacketsLost != 0 || rep.PacketsSent < 20*40 {
		t.Errorf("packets: %s", b)
	}
	if !raceEnabled && (rep.Interarrival.P50 < 15 || rep.Interarrival.P50 > 25) {
		t.Errorf("interarrival: %s", b)
	}
	if rep.DTMFToNext == nil || rep.DTMFToNext.Count != 20 || !raceEnabled && rep.DTMFToNext.P99 > 100 {
		t.Errorf("dtmf: %s", b)
	}
	if rep.CPUUserMS+rep.CPUSystemMS <= 0 {
		t.Errorf("cpu: %s", b)
	}
	last := progress[len(progress)-1]
	if len(progress) < 3 || last.Started != 20 || last.Ended != 20 || last.Up != 0 {
		t.Errorf("progress %+v", progress)
	}
	if got := len(uas.received()); got != 20 {
		t.Errorf("UAS got %d digits", got)
	}
	if err := checkJSON("load.schema.json", b); err != nil {
		t.Error(err)
	}
}
