package routing

import "testing"

func TestHotlineNumber(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"12345", true},
		{"023-12345", true},
		{"02312345", true},
		{"+862312345", true},
		{"862312345", true},
		{"+86 23 12345", true},
		{"023 1234 5", true},
		{"tel:+86-23-12345", true},
		{"tel:023-12345", true},
		{"sip:12345@127.0.0.1", true},
		{"sip:023-12345@hotline.example;user=phone", true},
		{"sip:+862312345@10.0.0.1:5060", true},
		{"sips:02312345@host", true},
		{"sip:023%2012345@host", true},
		{"sip:12315@127.0.0.1", false},
		{"123456", false},
		{"1234", false},
		{"sip:alice@host", false},
		{"", false},
		{"+8612345", false},
	} {
		got, ok := HotlineNumber(tc.in)
		if ok != tc.ok || (ok && got != "12345") {
			t.Errorf("HotlineNumber(%q) = %q, %v; want ok=%v", tc.in, got, ok, tc.ok)
		}
	}
}
