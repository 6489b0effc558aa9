package ari

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// sharedARI is Asterisk's spec and the recorded transcripts, outside the
// repository (GPL-2.0 data we read but do not copy). Tests that need it skip
// when it is absent, except under CI=true where absence is a failure.
const sharedARI = "../../shared/ari"

func needShared(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join(sharedARI, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s is missing: %v", dir, err)
		}
		t.Skipf("%s not present: %v", dir, err)
	}
	return dir
}

type specParam struct {
	Name          string `json:"name"`
	ParamType     string `json:"paramType"`
	Required      bool   `json:"required"`
	AllowMultiple bool   `json:"allowMultiple"`
}

type specOp struct {
	Resource, Path, Method, Nickname string
	Params                           []specParam
	re                               *regexp.Regexp
}

func loadSpecOps(t *testing.T) []specOp {
	t.Helper()
	dir := needShared(t, "api-docs")
	var listing struct {
		APIs []struct {
			Path string `json:"path"`
		} `json:"apis"`
	}
	readJSON(t, filepath.Join(dir, "resources.json"), &listing)
	var out []specOp
	for _, a := range listing.APIs {
		// "/api-docs/channels.{format}" -> channels.json
		name := strings.TrimSuffix(filepath.Base(a.Path), ".{format}")
		var decl struct {
			APIs []struct {
				Path       string `json:"path"`
				Operations []struct {
					HTTPMethod string      `json:"httpMethod"`
					Nickname   string      `json:"nickname"`
					Parameters []specParam `json:"parameters"`
				} `json:"operations"`
			} `json:"apis"`
		}
		readJSON(t, filepath.Join(dir, name+".json"), &decl)
		for _, api := range decl.APIs {
			// "/channels/{channelId}" -> ^/ari/channels/[^/]+$ (QuoteMeta escapes the braces)
			re := regexp.MustCompile("^/ari" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(api.Path), "[^/]+") + "$")
			for _, op := range api.Operations {
				out = append(out, specOp{Resource: name, Path: api.Path, Method: op.HTTPMethod, Nickname: op.Nickname, Params: op.Parameters, re: re})
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d operations in the spec: wrong directory?", len(out))
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type recorded struct {
	Method, Path string
	Query        map[string][]string
	Body         map[string]any
}

// recorder is an HTTP server that records each request and answers 204.
func recorder(t *testing.T) (*Client, func() []recorded) {
	t.Helper()
	var reqs []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "hotline" || p != "secret" {
			t.Errorf("%s %s: basic auth missing", r.Method, r.URL.Path)
		}
		rec := recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query()}
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: body with Content-Type %q", r.Method, r.URL.Path, ct)
			}
			if err := json.Unmarshal(b, &rec.Body); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %v", r.Method, r.URL.Path, err)
			}
		}
		reqs = append(reqs, rec)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{URL: srv.URL, User: "hotline", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return c, func() []recorded { r := reqs; reqs = nil; return r }
}

// callOp calls the Client method of op through reflection with path
// arguments "pathN" and a params struct where the fields selected by fill
// are set to non-zero values.
func callOp(t *testing.T, c *Client, op OperationInfo, fill func(tag string) bool) error {
	t.Helper()
	m := reflect.ValueOf(c).MethodByName(op.GoMethod)
	if !m.IsValid() {
		t.Fatalf("Operations lists %s but Client has no such method", op.GoMethod)
	}
	mt := m.Type()
	args := []reflect.Value{reflect.ValueOf(context.Background())}
	for i := 1; i < mt.NumIn(); i++ {
		in := mt.In(i)
		switch in.Kind() {
		case reflect.String:
			args = append(args, reflect.ValueOf("path"+string(rune('0'+i))))
		case reflect.Struct:
			v := reflect.New(in).Elem()
			for f := 0; f < in.NumField(); f++ {
				if !fill(in.Field(f).Tag.Get("ari")) {
					continue
				}
				fv := v.Field(f)
				switch fv.Kind() {
				case reflect.String:
					fv.SetString("v")
				case reflect.Int, reflect.Int64:
					fv.SetInt(7)
				case reflect.Bool:
					fv.SetBool(true)
				case reflect.Slice:
					if fv.Type().Elem().Kind() == reflect.String {
						fv.Set(reflect.ValueOf([]string{"a", "b"}))
					} else { // json.RawMessage
						fv.Set(reflect.ValueOf(json.RawMessage(`{"k":"v"}`)).Convert(fv.Type()))
					}
				case reflect.Map:
					fv.Set(reflect.ValueOf(map[string]string{"k": "v"}))
				default:
					t.Fatalf("%s: field %s: kind %s", op.GoMethod, in.Field(f).Name, fv.Kind())
				}
			}
			args = append(args, v)
		default:
			t.Fatalf("%s: argument %d of kind %s", op.GoMethod, i, in.Kind())
		}
	}
	out := m.Call(args)
	if err, _ := out[len(out)-1].Interface().(error); err != nil {
		return err
	}
	return nil
}

// TestRequestsMatchSpec: every request the client can make matches an
// operation of Asterisk's spec: path, method, required parameters present,
// and no parameter the spec does not declare.
func TestRequestsMatchSpec(t *testing.T) {
	spec := loadSpecOps(t)
	c, take := recorder(t)
	if len(Operations) < 50 {
		t.Fatalf("only %d operations generated", len(Operations))
	}
	for _, op := range Operations {
		t.Run(op.GoMethod, func(t *testing.T) {
			for _, mode := range []string{"required", "all"} {
				err := callOp(t, c, op, func(tag string) bool {
					return mode == "all" || strings.Contains(tag, ",required")
				})
				if err != nil {
					t.Fatalf("%s with %s parameters: %v", op.GoMethod, mode, err)
				}
				reqs := take()
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				checkAgainstSpec(t, spec, op, reqs[0])
			}
		})
	}
	// A required parameter left out is refused before any request is made.
	if _, err := c.ChannelsPlay(context.Background(), "ch", ChannelsPlayParams{}); err == nil {
		t.Error("ChannelsPlay without media: no error")
	}
	if len(take()) != 0 {
		t.Error("a request was sent without its required parameter")
	}
}

func checkAgainstSpec(t *testing.T, spec []specOp, op OperationInfo, r recorded) {
	t.Helper()
	var match *specOp
	for i := range spec {
		if spec[i].Method == r.Method && spec[i].re.MatchString(r.Path) && spec[i].Nickname == op.Nickname && spec[i].Resource == op.Resource {
			match = &spec[i]
		}
	}
	if match == nil {
		t.Fatalf("%s %s matches no spec operation %s.%s", r.Method, r.Path, op.Resource, op.Nickname)
	}
	declared := map[string]specParam{}
	for _, p := range match.Params {
		declared[p.Name] = p
		switch p.ParamType {
		case "query":
			if p.Required && len(r.Query[p.Name]) == 0 {
				t.Errorf("%s: required query parameter %q missing", op.GoMethod, p.Name)
			}
		case "body":
			if p.Required && r.Body[p.Name] == nil {
				t.Errorf("%s: required body parameter %q missing", op.GoMethod, p.Name)
			}
		}
	}
	for name, vals := range r.Query {
		p, ok := declared[name]
		if !ok || p.ParamType != "query" {
			t.Errorf("%s: query parameter %q is not in the spec", op.GoMethod, name)
			continue
		}
		if len(vals) != 1 || (!p.AllowMultiple && strings.Contains(vals[0], ",") && vals[0] != "v") {
			t.Errorf("%s: parameter %q sent as %q", op.GoMethod, name, vals)
		}
	}
	for name := range r.Body {
		if p, ok := declared[name]; !ok || p.ParamType != "body" {
			t.Errorf("%s: body key %q is not a body parameter in the spec", op.GoMethod, name)
		}
	}
}

// TestEventsURLMatchesSpec: the WebSocket URL is the spec's /events
// operation with its required app parameter.
func TestEventsURLMatchesSpec(t *testing.T) {
	spec := loadSpecOps(t)
	c, err := NewClient(ClientConfig{URL: "http://127.0.0.1:8088", User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	u := c.eventsURL("hotline")
	var ws *specOp
	for i := range spec {
		if spec[i].Nickname == "eventWebsocket" {
			ws = &spec[i]
		}
	}
	if ws == nil {
		t.Fatal("no eventWebsocket operation in the spec")
	}
	if u.Scheme != "ws" || !ws.re.MatchString(u.Path) {
		t.Fatalf("events URL %s does not match spec path %s", u, ws.Path)
	}
	q := u.Query()
	for _, p := range ws.Params {
		if p.Required && q.Get(p.Name) == "" {
			t.Errorf("events URL lacks required %q", p.Name)
		}
	}
	for name := range q {
		found := false
		for _, p := range ws.Params {
			found = found || p.Name == name
		}
		if !found {
			t.Errorf("events URL parameter %q not in the spec", name)
		}
	}
	if q.Get("app") != "hotline" || q.Get("subscribeAll") != "false" {
		t.Errorf("events URL query %q", u.RawQuery)
	}
}

// TestTranscriptEventsDecodeLossless: every event Asterisk 22.10.1 sent in
// the recorded transcripts decodes into its typed struct (none unknown) and
// re-encodes to the same JSON (same field set, same values).
func TestTranscriptEventsDecodeLossless(t *testing.T) {
	dir := needShared(t, "transcripts")
	files, err := filepath.Glob(filepath.Join(dir, "*.events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	observer, _ := filepath.Glob(filepath.Join(dir, "*.observer.jsonl"))
	if n := decodeAll(t, append(files, observer...)); n < 200 {
		t.Errorf("only %d events checked", n)
	}
}

// TestTestdataEventsDecodeLossless is the same check on the committed
// copies, so that it runs in a fresh clone too.
func TestTestdataEventsDecodeLossless(t *testing.T) {
	files, err := filepath.Glob("testdata/*.events.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	if n := decodeAll(t, files); n < 20 {
		t.Errorf("only %d events checked", n)
	}
}

func decodeAll(t *testing.T, files []string) int {
	t.Helper()
	n := 0
	types := map[string]int{}
	for _, f := range files {
		for i, line := range jsonLines(t, f) {
			ev, err := DecodeEvent(line)
			if err != nil {
				t.Errorf("%s:%d: %v", f, i+1, err)
				continue
			}
			if _, unknown := ev.(*UnknownEvent); unknown {
				t.Errorf("%s:%d: type %s unknown to the generated code", f, i+1, ev.EventType())
			}
			types[ev.EventType()]++
			n++
			assertSameJSON(t, f, i+1, line, ev)
		}
	}
	keys := make([]string, 0, len(types))
	for k := range types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d events in %d files, types: %v", n, len(files), keys)
	return n
}

func assertSameJSON(t *testing.T, file string, line int, orig []byte, ev Event) {
	t.Helper()
	again, err := json.Marshal(ev)
	if err != nil {
		t.Errorf("%s:%d: re-encode: %v", file, line, err)
		return
	}
	var a, b any
	if err := json.Unmarshal(orig, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s:%d: %s lost or changed data:\n in:  %s\n out: %s", file, line, ev.EventType(), orig, again)
	}
}

func jsonLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnknownEventKeptRaw: a type this build does not know is delivered
// verbatim, not dropped.
func TestUnknownEventKeptRaw(t *testing.T) {
	in := []byte(`{"type":"FutureThing","application":"hotline","x":{"y":[1,2]}}`)
	ev, err := DecodeEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := ev.(*UnknownEvent)
	if !ok || u.EventType() != "FutureThing" {
		t.Fatalf("got %T %v", ev, ev)
	}
	assertSameJSON(t, "inline", 1, in, ev)
}

// TestErrorMapping: ARI status codes map to errors.Is-able sentinels, and
// the error text carries no query (numbers are personal data).
func TestErrorMapping(t *testing.T) {
	status := http.StatusNotFound
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"message":"Channel not found"}`)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{URL: srv.URL + "/", User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		status int
		want   error
	}{
		{404, ErrNotFound}, {400, ErrBadRequest}, {401, ErrUnauthorized}, {409, ErrConflict},
		{412, ErrPrecondition}, {422, ErrUnprocessable}, {500, ErrServer}, {503, ErrServer},
	}
	for _, tc := range cases {
		status = tc.status
		_, err := c.ChannelsOriginate(ctx, ChannelsOriginateParams{Endpoint: "PJSIP/agent1", CallerID: "13800138000"})
		if !errorsIs(err, tc.want) {
			t.Errorf("status %d: %v is not %v", tc.status, err, tc.want)
		}
		if tc.status != 404 && errorsIs(err, ErrNotFound) {
			t.Errorf("status %d: matches ErrNotFound", tc.status)
		}
		if strings.Contains(err.Error(), "13800138000") {
			t.Errorf("error leaks the caller number: %v", err)
		}
	}
	status = 404
	err = c.ChannelsHangup(ctx, "1795835327.7424", ChannelsHangupParams{Reason: "normal"})
	var ae *Error
	if !errorsAs(err, &ae) || ae.Message != "Channel not found" || ae.Path != "/channels/1795835327.7424" {
		t.Errorf("hangup 404: %#v", err)
	}
}
