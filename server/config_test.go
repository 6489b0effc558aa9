package server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hotline.yaml")
	os.WriteFile(file, []byte("sip-listen: 127.0.0.1:6000\nhttp-listen: 127.0.0.1:9000\ndata-dir: /tmp/filedir\n"), 0o600)
	env := []string{"HOTLINE_HTTP_LISTEN=127.0.0.1:9100", "HOTLINE_DATA_DIR=/tmp/envdir", "PATH=/bin"}
	c, _, err := Parse("hotlined", []string{"--config", file, "--data-dir=/tmp/flagdir"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPListen != "127.0.0.1:6000" {
		t.Errorf("file value lost: sip-listen %q", c.SIPListen)
	}
	if c.HTTPListen != "127.0.0.1:9100" {
		t.Errorf("env must beat the file: http-listen %q", c.HTTPListen)
	}
	if c.DataDir != "/tmp/flagdir" {
		t.Errorf("flag must beat env: data-dir %q", c.DataDir)
	}

	c, _, err = Parse("hotlined", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPListen != "127.0.0.1:5060" || c.HTTPListen != "127.0.0.1:8080" || c.RTPTimeout.Seconds() != 30 || c.Plane != "sip" {
		t.Errorf("defaults: %+v", c)
	}

	os.WriteFile(file, []byte("sip-listn: x\n"), 0o600)
	if _, _, err := Parse("hotlined", []string{"--config", file}, nil); err == nil {
		t.Error("a misspelt config key was accepted")
	}
}

// TestTrunkPasswordFromEnv: the trunk password comes from the environment,
// as docs/configuration.md advises (not the command line).
func TestTrunkPasswordFromEnv(t *testing.T) {
	c, _, err := Parse("hotlined", []string{"--trunk-user", "cq12345"}, []string{"HOTLINE_TRUNK_PASSWORD=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TrunkUser != "cq12345" || c.TrunkPassword != "s3cret" {
		t.Errorf("trunk user %q, password set %v", c.TrunkUser, c.TrunkPassword == "s3cret")
	}
}
