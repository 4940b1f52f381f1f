// Package errdefs is berth's one error vocabulary. Packages wrap these kinds
// with the noun they concern, for example
//
//	fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
//
// and the API maps them to HTTP status codes in exactly one place
// (api.statusOf). Callers test kinds with errors.Is, never ==.
package errdefs

import (
	"errors"
	"fmt"
)

// The error kinds. Their messages are short because they are always wrapped.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrConflict           = errors.New("conflict")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
	// ErrNotModified means the request asked for the state things are
	// already in (start a running container, stop a stopped one); the API
	// answers 304 as dockerd does, and clients treat it as success.
	ErrNotModified = errors.New("not modified")
)

// kindError carries a kind without adding the kind's text to the message, for
// errors whose wording must match Docker's exactly
// ("No such image: busybox:nope").
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Errorf formats a message that errors.Is reports as being of kind, without
// appending the kind's own text.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// NotFound reports whether err is of kind ErrNotFound.
func NotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// InvalidArgument reports whether err is of kind ErrInvalidArgument.
func InvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// Conflict reports whether err is of kind ErrConflict.
func Conflict(err error) bool { return errors.Is(err, ErrConflict) }

// AlreadyExists reports whether err is of kind ErrAlreadyExists.
func AlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsNotModified reports whether err is of kind ErrNotModified.
func IsNotModified(err error) bool { return errors.Is(err, ErrNotModified) }
