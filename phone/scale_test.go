package phone

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestScale is a manual load test of the phone against the in-test UAS in
// the same process (so the CPU figure covers both sides):
//
//	PHONE_SCALE_CALLS=2000 PHONE_SCALE_HOLD=20s go test ./phone -run Scale -v
//
// It is skipped unless PHONE_SCALE_CALLS is set.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PHONE_SCALE_CALLS"))
	if n == 0 {
		t.Skip("PHONE_SCALE_CALLS not set")
	}
	hold, err := time.ParseDuration(os.Getenv("PHONE_SCALE_HOLD"))
	if err != nil {
		hold = 20 * time.Second
	}
	rate := 200.0
	if r, err := strconv.ParseFloat(os.Getenv("PHONE_SCALE_RATE"), 64); err == nil {
		rate = r
	}
	lib := loadLib(t)
	uas := newTestUAS(t, lib, func(u *testUAS) { u.firstPrompt, u.menuPrompt = "zh-CN/greeting", "zh-CN/main-menu" })
	p, err := New(Config{Prompts: lib, MediaSockets: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := LoadConfig{
		Dial:  DialOptions{Target: uas.addr, To: "12345", From: "13800138000", SetupTimeout: 10 * time.Second},
		Calls: n, Rate: rate, Hold: hold,
	}
	if os.Getenv("PHONE_SCALE_DTMF") != "" {
		cfg.Digits, cfg.DTMFAfter = []byte("1"), 2*time.Second
	}
	rep := p.Load(context.Background(), cfg, func(lp LoadProgress) {
		if int(lp.Elapsed/time.Second)%5 == 0 && lp.Elapsed%time.Second < 500*time.Millisecond {
			t.Logf("%+v", lp)
		}
	})
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", b)
	es := uas.engine.Stats()
	t.Logf("uas engine: %+v", es)
	t.Logf("phone engine: %+v", p.Engine().Stats())
	if rep.SetupsFailed > 0 {
		t.Errorf("%d setups failed", rep.SetupsFailed)
	}
}
