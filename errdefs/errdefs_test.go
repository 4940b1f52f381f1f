package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("image %q: %w", "busybox", ErrNotFound)
	if !NotFound(wrapped) || Conflict(wrapped) {
		t.Fatalf("wrapped not-found misclassified: %v", wrapped)
	}
	exact := Errorf(ErrNotFound, "No such image: %s", "busybox:nope")
	if exact.Error() != "No such image: busybox:nope" {
		t.Fatalf("Errorf changed the message: %q", exact.Error())
	}
	if !errors.Is(fmt.Errorf("outer: %w", exact), ErrNotFound) {
		t.Fatal("Errorf kind lost through wrapping")
	}
	if errors.Is(exact, ErrConflict) {
		t.Fatal("Errorf matched the wrong kind")
	}
}
