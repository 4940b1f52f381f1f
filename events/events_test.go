package events

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestReplayAndLive(t *testing.T) {
	t.Parallel()
	b := New()
	b.Publish(events.ContainerEventType, events.ActionCreate, "c1", map[string]string{"name": "web"})
	b.Publish(events.ImageEventType, events.ActionTag, "sha256:x", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	past, live, err := b.Events(ctx, time.Time{}, time.Time{}, map[string][]string{"type": {"container"}})
	if err != nil || len(past) != 1 || past[0].Actor.ID != "c1" {
		t.Fatalf("replay: %+v %v", past, err)
	}
	b.Publish(events.ImageEventType, events.ActionDelete, "sha256:x", nil)
	b.Publish(events.ContainerEventType, events.ActionStart, "c1", map[string]string{"name": "web"})
	select {
	case m := <-live:
		if m.Action != events.ActionStart {
			t.Fatalf("live got %v", m.Action)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}
	cancel()
	for range live {
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	b := New()
	b.Publish(events.ContainerEventType, events.ActionDie, "abc123", map[string]string{"name": "web", "exitCode": "0"})
	b.Publish(events.ContainerEventType, events.Action("exec_start: sh"), "abc123", map[string]string{"name": "web"})
	cases := []struct {
		f    map[string][]string
		want int
	}{
		{map[string][]string{"container": {"web"}}, 2},
		{map[string][]string{"container": {"abc"}}, 2},
		{map[string][]string{"event": {"die"}}, 1},
		{map[string][]string{"event": {"exec_start"}}, 1},
		{map[string][]string{"image": {"web"}}, 0},
		{map[string][]string{"label": {"exitCode=0"}}, 1},
	}
	for _, tc := range cases {
		past, _, _ := b.Events(context.Background(), time.Time{}, time.Now(), tc.f)
		if len(past) != tc.want {
			t.Errorf("%v: %d events, want %d", tc.f, len(past), tc.want)
		}
	}
}
