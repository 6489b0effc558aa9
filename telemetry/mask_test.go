package telemetry

import "testing"

func TestMaskNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13800138000", "138****8000"},
		{"+8613800138000", "+86138****8000"},
		{"02363862437", "023****2437"},
		{"63862437", "638*2437"},
		{"12345", "12345"},
		{"1001", "1**1"},
		{"", ""},
		{"12", "**"},
	} {
		if got := MaskNumber(tc.in); got != tc.want {
			t.Errorf("MaskNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
