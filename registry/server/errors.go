package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"berth/errdefs"
	"berth/registry/auth"
)

// Error codes of the distribution spec.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeTagInvalid          = "TAG_INVALID"
	codeUnsupported         = "UNSUPPORTED"
	codeUnknown             = "UNKNOWN"
)

// apiError is an error answered with a spec error body.
type apiError struct {
	status  int
	code    string
	message string
	detail  any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError maps err to its status and spec body; it is the one place that
// does so. Errors that are not API or auth errors are storage failures and
// answer 500 with code UNKNOWN.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var authErr *auth.Error
	status, entry := http.StatusInternalServerError, errorEntry{Code: codeUnknown, Message: "internal error"}
	switch {
	case errors.As(err, &ae):
		status, entry = ae.status, errorEntry{Code: ae.code, Message: ae.message, Detail: ae.detail}
	case errors.As(err, &authErr):
		status, entry = authErr.Status, errorEntry{Code: authErr.Code, Message: authErr.Message}
		if len(authErr.Detail) > 0 {
			entry.Detail = authErr.Detail
		}
		if authErr.Challenge != "" {
			w.Header().Set("WWW-Authenticate", authErr.Challenge)
		}
	case errors.Is(err, errdefs.ErrUnavailable):
		status, entry = http.StatusServiceUnavailable, errorEntry{Code: "UNAVAILABLE", Message: "storage unavailable"}
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		status = 499 // client went away; nobody reads the body
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{entry}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
