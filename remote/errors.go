package remote

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"berth/errdefs"
)

// RegistryError is one entry of a registry's JSON error body.
type RegistryError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// StatusError is a registry response berth did not expect. Errors.Is
// reports its errdefs kind, derived from the status and error codes.
type StatusError struct {
	Status int
	Errors []RegistryError
	kind   error
}

func (e *StatusError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("registry answered %d %s", e.Status, http.StatusText(e.Status))
	}
	parts := make([]string, 0, len(e.Errors))
	for _, re := range e.Errors {
		code := strings.ToLower(strings.ReplaceAll(re.Code, "_", " "))
		if re.Message != "" && re.Message != code {
			parts = append(parts, code+": "+re.Message)
		} else {
			parts = append(parts, code)
		}
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, errdefs.ErrNotFound) and friends work.
func (e *StatusError) Is(target error) bool { return target == e.kind }

// HasCode reports whether the registry sent the error code (e.g.
// "MANIFEST_UNKNOWN").
func (e *StatusError) HasCode(code string) bool {
	for _, re := range e.Errors {
		if re.Code == code {
			return true
		}
	}
	return false
}

// responseError reads a failed response's body (bounded) into a
// StatusError. It does not close the body.
func responseError(resp *http.Response) error {
	e := &StatusError{Status: resp.StatusCode}
	var body struct {
		Errors []RegistryError `json:"errors"`
	}
	if data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); err == nil {
		_ = json.Unmarshal(data, &body) // bodies are often not JSON
	}
	e.Errors = body.Errors
	e.kind = kindOf(resp.StatusCode, e)
	return e
}

func kindOf(status int, e *StatusError) error {
	switch {
	case e.HasCode("DENIED"):
		return errdefs.ErrPermissionDenied
	case e.HasCode("UNAUTHORIZED"), status == http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case e.HasCode("TOOMANYREQUESTS"), status == http.StatusTooManyRequests:
		return errdefs.ErrUnavailable
	case e.HasCode("UNSUPPORTED"), status == http.StatusMethodNotAllowed:
		return errdefs.ErrNotImplemented
	}
	switch {
	case status == http.StatusNotFound:
		return errdefs.ErrNotFound
	case status == http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case status == http.StatusRequestedRangeNotSatisfiable, status == http.StatusConflict:
		return errdefs.ErrConflict
	case status >= 500:
		return errdefs.ErrUnavailable
	case status >= 400:
		return errdefs.ErrInvalidArgument
	}
	return errdefs.ErrUnavailable
}
