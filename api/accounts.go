package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cq12345/hotline/api/auth"
)

// AccountRequest is the body of POST /api/v1/accounts.
type AccountRequest struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role"`
	Password string    `json:"password,omitempty"` // optional: without one, tokens come from an admin
}

// PasswordRequest is the body of PUT /api/v1/accounts/{name}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// AccountList is the body of GET /api/v1/accounts.
type AccountList struct {
	Accounts []auth.Account `json:"accounts"`
}

func (s *Server) accountRoutes(write func(handlerFunc) http.Handler) {
	m := s.mux
	m.Handle("GET /api/v1/accounts", write(s.listAccounts))
	m.Handle("POST /api/v1/accounts", write(s.addAccount))
	m.Handle("POST /api/v1/accounts/{name}/disable", write(s.disableAccount))
	m.Handle("PUT /api/v1/accounts/{name}/password", write(s.setPassword))
	m.Handle("POST /api/v1/login", http.HandlerFunc(s.login))
}

func (s *Server) accountError(err error, name string) error {
	switch {
	case errors.Is(err, auth.ErrBadRequest):
		return badRequest("%v", err)
	case errors.Is(err, auth.ErrExists):
		return &Error{Message: "the account exists already", Code: CodeBadRequest, ID: name}
	case errors.Is(err, auth.ErrNotFound):
		return &Error{Message: "no such active account", Code: CodeNotFound, ID: name}
	}
	return err
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	l, err := s.cfg.Tokens.Accounts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AccountList{Accounts: l})
	return nil
}

func (s *Server) addAccount(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req AccountRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	a, err := s.cfg.Tokens.AddAccount(r.Context(), req.Name, req.Role, req.Password, tok.Name)
	if err != nil {
		return s.accountError(err, req.Name)
	}
	s.log.Info("api: account added", "account", a.Name, "role", a.Role, "actor", tok.Name)
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) disableAccount(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	name := r.PathValue("name")
	if name == tok.Name {
		return badRequest("an admin does not disable their own account")
	}
	if err := s.cfg.Tokens.DisableAccount(r.Context(), name, tok.Name); err != nil {
		return s.accountError(err, name)
	}
	s.log.Info("api: account disabled", "account", name, "actor", tok.Name)
	a, err := s.cfg.Tokens.Account(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	name := r.PathValue("name")
	var req PasswordRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if err := s.cfg.Tokens.SetPassword(r.Context(), name, req.Password); err != nil {
		return s.accountError(err, name)
	}
	s.log.Info("api: password set", "account", name, "actor", tok.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// login exchanges an account's name and password for a new token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var req LoginRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, &Error{Message: "body: " + err.Error(), Code: CodeBadRequest})
		return
	}
	secret, t, err := s.cfg.Tokens.Login(r.Context(), req.Name, req.Password)
	if errors.Is(err, auth.ErrLogin) {
		s.log.Warn("api: login refused", "account", req.Name)
		writeError(w, http.StatusUnauthorized, &Error{Message: "wrong name or password", Code: CodeUnauthorized})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("api: login", "account", t.Name, "token_id", t.ID)
	writeJSON(w, http.StatusCreated, NewToken{Token: *t, Secret: secret})
}
