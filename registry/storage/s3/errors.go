package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"berth/errdefs"
)

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

// wrap maps an S3 error to its errdefs kind, with the storage path (or
// bucket) in front. A nil error stays nil.
func (d *Driver) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("storage path %s: %w", what, err)
	}
	code, status := apiCode(err), httpStatus(err)
	var kind error
	switch {
	case isNotFound(err):
		kind = errdefs.ErrNotFound
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || status == http.StatusForbidden:
		kind = errdefs.ErrPermissionDenied
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		kind = errdefs.ErrInvalidArgument
	default:
		// Throttling, 5xx and network errors the retryer gave up on, and
		// anything unexpected: the store is not serving us.
		kind = errdefs.ErrUnavailable
	}
	return fmt.Errorf("storage path %s: s3: %v: %w", what, err, kind)
}
