package cases

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cq12345/hotline/telemetry"
)

// KeyRing seals personal data with AES-256-GCM (NIST SP 800-38D). It holds
// one current key, used to seal, and older keys kept to open what they
// sealed, so keys can rotate: add a new key as current, keep the old ones
// until every ciphertext was re-sealed or expired.
//
// A sealed value is text: "v1.<key id>.<base64url(nonce || ciphertext)>".
// The key id travels with the ciphertext; the additional data binds a value
// to its purpose (e.g. "caller/<case id>"), so a ciphertext copied into
// another field or case does not open.
type KeyRing struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyRing builds a key ring. keys maps key ids (letters, digits, '-', '_')
// to 32-byte keys; current names the key that seals.
func NewKeyRing(current string, keys map[string][]byte) (*KeyRing, error) {
	kr := &KeyRing{current: current, aeads: map[string]cipher.AEAD{}}
	for id, k := range keys {
		if id == "" || strings.ContainsAny(id, ". \t\n") {
			return nil, fmt.Errorf("cases: key id %q: must be non-empty without dots or spaces", id)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("cases: key %q: need 32 bytes, have %d", id, len(k))
		}
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("cases: key %q: %w", id, err)
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("cases: key %q: %w", id, err)
		}
		kr.aeads[id] = g
	}
	if _, ok := kr.aeads[current]; !ok {
		return nil, fmt.Errorf("cases: current key %q is not in the ring", current)
	}
	return kr, nil
}

// Current returns the id of the key that seals.
func (kr *KeyRing) Current() string { return kr.current }

// Seal encrypts plain for purpose. An empty plain seals to "".
func (kr *KeyRing) Seal(plain []byte, purpose string) (string, error) {
	if len(plain) == 0 {
		return "", nil
	}
	g := kr.aeads[kr.current]
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plain)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("cases: seal: %w", err)
	}
	out := g.Seal(nonce, nonce, plain, []byte(purpose))
	return "v1." + kr.current + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// ErrKeyUnknown reports a ciphertext sealed with a key the ring lacks.
var ErrKeyUnknown = errors.New("cases: sealed with an unknown key")

// Open decrypts a value Seal made for the same purpose.
func (kr *KeyRing) Open(sealed, purpose string) ([]byte, error) {
	if sealed == "" {
		return nil, nil
	}
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, errors.New("cases: open: not a sealed value")
	}
	g, ok := kr.aeads[parts[1]]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrKeyUnknown, parts[1])
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < g.NonceSize() {
		return nil, errors.New("cases: open: malformed sealed value")
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("cases: open with key %q: %w", parts[1], err)
	}
	return plain, nil
}

// KeyID returns the id of the key a sealed value was sealed with.
func KeyID(sealed string) string {
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// Protector holds what protects caller data: the key ring that seals caller
// numbers and notes, and the separate key of the caller look-up hash.
type Protector struct {
	Keys    *KeyRing
	hashKey []byte
	// DefaultArea is the area code (without trunk 0) added to a local
	// landline number of 7-8 digits before hashing, so "63862437" and
	// "023-63862437" hash alike. Chongqing: "23".
	DefaultArea string
}

// NewProtector builds a Protector. hashKey must be at least 32 bytes and
// differ from every sealing key. The hash key cannot rotate without
// re-hashing every case: keep it.
func NewProtector(keys *KeyRing, hashKey []byte) (*Protector, error) {
	if keys == nil {
		return nil, errors.New("cases: protector needs a key ring")
	}
	if len(hashKey) < 32 {
		return nil, fmt.Errorf("cases: hash key: need at least 32 bytes, have %d", len(hashKey))
	}
	return &Protector{Keys: keys, hashKey: append([]byte(nil), hashKey...), DefaultArea: "23"}, nil
}

// NormaliseCaller reduces a calling number to the digits that identify the
// line, so that one phone hashes alike however the network presents it:
// "+86 138-0013-8000", "008613800138000" and "13800138000" all give
// "13800138000"; "+86 23 6386 2437", "023-63862437" and (with area "23")
// "63862437" all give "2363862437".
func NormaliseCaller(n, defaultArea string) string {
	// A SIP or tel URI: keep the user part only (RFC 3261 19.1, RFC 3966).
	if i := strings.IndexByte(n, ':'); i >= 0 {
		switch strings.ToLower(strings.TrimSpace(n[:i])) {
		case "sip", "sips", "tel":
			n = n[i+1:]
		}
	}
	if i := strings.IndexAny(n, "@;"); i >= 0 {
		n = n[:i]
	}
	var b strings.Builder
	for _, r := range n {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "0086"):
		d = d[4:]
	case strings.HasPrefix(d, "86") && len(d) >= 12:
		d = d[2:]
	}
	switch {
	case len(d) == 11 && d[0] == '1':
		// mobile
	case strings.HasPrefix(d, "0") && len(d) >= 10:
		d = d[1:] // trunk prefix of a landline
	case (len(d) == 7 || len(d) == 8) && defaultArea != "":
		d = defaultArea + d
	}
	return d
}

// CallerHash returns the keyed look-up hash (HMAC-SHA256, RFC 2104) of a
// normalised caller number, hex encoded. "" for an empty number.
func (p *Protector) CallerHash(number string) string {
	n := NormaliseCaller(number, p.DefaultArea)
	if n == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.hashKey)
	m.Write([]byte(n))
	return hex.EncodeToString(m.Sum(nil))
}

func callerPurpose(caseID string) string { return "caller/" + caseID }
func notePurpose(eventID string) string  { return "note/" + eventID }

// Key files. keys.txt has one key per line, "<id> <base64 32 bytes>"; the
// last line is the current key (append a line to rotate). hash.key holds
// the base64 look-up hash key.
const (
	KeyFileName     = "case.keys"
	HashKeyFileName = "hash.key"
	// EnvKeys holds keys in the key-file format, lines separated by
	// newlines or ';'. EnvHashKey holds the base64 hash key.
	EnvKeys    = "HOTLINE_CASE_KEYS"
	EnvHashKey = "HOTLINE_CASE_HASH_KEY"
)

// ParseKeys reads the key-file format: "<id> <base64 key>" per line (or
// separated by ';'), '#' comments; the last key is the current one.
func ParseKeys(text string) (*KeyRing, error) {
	keys := map[string][]byte{}
	current := ""
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		lines = append(lines, strings.Split(line, ";")...)
	}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, errors.New("cases: key line: want \"<id> <base64 key>\"")
		}
		k, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("cases: key %q: %w", f[0], err)
		}
		keys[f[0]] = k
		current = f[0]
	}
	if current == "" {
		return nil, errors.New("cases: no key")
	}
	return NewKeyRing(current, keys)
}

// LoadProtector finds the keys: the environment (HOTLINE_CASE_KEYS and
// HOTLINE_CASE_HASH_KEY) first, else keyDir/case.keys and keyDir/hash.key.
// When neither exists and generate is set (the embedded default), it
// creates both files in keyDir (mode 0600, directory 0700) and says so in
// the log: back them up, a lost key makes the sealed numbers unreadable.
func LoadProtector(keyDir string, generate bool, log *slog.Logger) (*Protector, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ek := os.Getenv(EnvKeys); ek != "" {
		kr, err := ParseKeys(ek)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		hk, err := base64.StdEncoding.DecodeString(strings.TrimSpace(os.Getenv(EnvHashKey)))
		if err != nil {
			return nil, fmt.Errorf("cases: %s: %w", EnvHashKey, err)
		}
		return NewProtector(kr, hk)
	}
	kf := filepath.Join(keyDir, KeyFileName)
	hf := filepath.Join(keyDir, HashKeyFileName)
	_, errK := os.Stat(kf)
	_, errH := os.Stat(hf)
	if errors.Is(errK, os.ErrNotExist) && errors.Is(errH, os.ErrNotExist) {
		if !generate {
			return nil, fmt.Errorf("cases: no keys: set %s and %s or create %s", EnvKeys, EnvHashKey, kf)
		}
		if err := generateKeys(keyDir, kf, hf); err != nil {
			return nil, err
		}
		log.Warn("cases: generated new data keys; back them up, cases cannot be read without them", "dir", keyDir)
	}
	kt, err := os.ReadFile(kf)
	if err != nil {
		return nil, fmt.Errorf("cases: keys: %w", err)
	}
	kr, err := ParseKeys(string(kt))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kf, err)
	}
	ht, err := os.ReadFile(hf)
	if err != nil {
		return nil, fmt.Errorf("cases: hash key: %w", err)
	}
	hk, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(ht)))
	if err != nil {
		return nil, fmt.Errorf("cases: %s: %w", hf, err)
	}
	return NewProtector(kr, hk)
}

func generateKeys(dir, kf, hf string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cases: key dir: %w", err)
	}
	k := make([]byte, 32)
	h := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("cases: generate key: %w", err)
	}
	if _, err := rand.Read(h); err != nil {
		return fmt.Errorf("cases: generate key: %w", err)
	}
	id := "k" + randomID(4)
	body := "# case data keys, one \"<id> <base64>\" a line. The last line seals: append a key to rotate.\n" +
		id + " " + base64.StdEncoding.EncodeToString(k) + "\n"
	for _, f := range []struct{ path, text string }{{kf, body}, {hf, base64.StdEncoding.EncodeToString(h) + "\n"}} {
		fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("cases: write key: %w", err)
		}
		if _, err := fd.WriteString(f.text); err != nil {
			fd.Close()
			return fmt.Errorf("cases: write key: %w", err)
		}
		if err := fd.Sync(); err != nil {
			fd.Close()
			return fmt.Errorf("cases: write key: %w", err)
		}
		if err := fd.Close(); err != nil {
			return fmt.Errorf("cases: write key: %w", err)
		}
	}
	return nil
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// MaskCaller masks a calling number for display and logs, after the same
// normalisation as the look-up hash (so "+86 138 0013 8000" shows as
// "138****8000").
func MaskCaller(n string) string {
	if d := NormaliseCaller(n, ""); d != "" {
		return telemetry.MaskNumber(d)
	}
	return telemetry.MaskNumber(n)
}
