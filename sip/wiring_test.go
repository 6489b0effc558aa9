package sip

import "github.com/cq12345/hotline/routing"

// What hotlined plugs into Config (compile-time checks of the wiring).
var (
	_ CredentialStore = (*routing.SQLStore)(nil)
	_ Destinations    = (*routing.Directory)(nil)
	_ Transferer      = (*routing.Router)(nil)
	_ routing.Dialer  = (*Server)(nil)
)
