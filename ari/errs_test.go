package ari

import (
	"errors"

	"github.com/cq12345/hotline/ivr"
)

var ivrErrTimeout = ivr.ErrTimeout

func errorsIs(err, target error) bool     { return errors.Is(err, target) }
func errorsAs(err error, target any) bool { return errors.As(err, target) }

func errTimeout() error { return ivrErrTimeout }
