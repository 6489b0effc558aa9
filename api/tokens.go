package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cq12345/hotline/api/auth"
)

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string    `json:"name"`
	Role auth.Role `json:"role"`
}

// NewToken answers POST /api/v1/tokens: the token's secret, shown once.
type NewToken struct {
	auth.Token
	Secret string `json:"token"`
}

// TokenList is the body of GET /api/v1/tokens.
type TokenList struct {
	Tokens []auth.Token `json:"tokens"`
}

func (s *Server) tokenRoutes(write func(handlerFunc) http.Handler) {
	s.mux.Handle("GET /api/v1/tokens", write(s.listTokens))
	s.mux.Handle("POST /api/v1/tokens", write(s.createToken))
	s.mux.Handle("DELETE /api/v1/tokens/{tid}", write(s.revokeToken))
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	l, err := s.cfg.Tokens.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TokenList{Tokens: l})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req TokenRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	secret, t, err := s.cfg.Tokens.Create(r.Context(), req.Name, req.Role, tok.Name)
	if errors.Is(err, auth.ErrBadRequest) {
		return badRequest("%v", err)
	}
	if err != nil {
		return err
	}
	s.log.Info("api: token created", "token_id", t.ID, "name", t.Name, "role", t.Role, "actor", tok.Name)
	writeJSON(w, http.StatusCreated, NewToken{Token: *t, Secret: secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	id := r.PathValue("tid")
	err := s.cfg.Tokens.Revoke(r.Context(), id)
	if errors.Is(err, auth.ErrNotFound) {
		return &Error{Message: "no such active token", Code: CodeNotFound, ID: id}
	}
	if err != nil {
		return err
	}
	s.log.Info("api: token revoked", "token_id", id, "actor", tok.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
