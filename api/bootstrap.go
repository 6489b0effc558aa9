package api

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cq12345/hotline/api/auth"
)

// TokenFile is the name of the bootstrap admin token file in the data dir;
// hotlinectl reads ./var/admin.token when given no token.
const TokenFile = "admin.token"

// Bootstrap creates the first admin token when the token store is empty
// (first start) and writes it to <dataDir>/admin.token with mode 0600,
// logging the file's path (never the token). With tokens already present it
// does nothing and returns "". It returns the path written.
func Bootstrap(ctx context.Context, tokens *auth.Store, dataDir string, logger *slog.Logger) (string, error) {
	if logger == nil {
		logger = slog.Default()
	}
	secret, tok, err := tokens.CreateFirst(ctx, "admin")
	if err != nil {
		return "", fmt.Errorf("api: bootstrap: %w", err)
	}
	if tok == nil {
		return "", nil
	}
	path, err := writeTokenFile(dataDir, secret)
	if err != nil {
		// Nobody can know the token: revoke it so that the next start
		// bootstraps again.
		if rerr := tokens.Revoke(context.WithoutCancel(ctx), tok.ID); rerr != nil {
			logger.Error("api: bootstrap: revoke the unwritten token", "err", rerr)
		}
		return "", fmt.Errorf("api: bootstrap: %w", err)
	}
	abs, _ := filepath.Abs(path)
	logger.Info("api: created the first admin token; hotlinectl reads it from this file", "path", abs, "token_id", tok.ID)
	return path, nil
}

func writeTokenFile(dataDir, secret string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, TokenFile)
	// Write beside, then rename: a reader never sees half a token, and the
	// file never exists with wider permissions.
	tmp, err := os.CreateTemp(dataDir, ".admin.token-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
