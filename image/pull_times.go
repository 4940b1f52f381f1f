package image

import (
	"context"
	"log/slog"
	"time"
)

// layerTimes is when a layer job passed each stage, logged at debug level
// when it ends: a slow pull is explained by which stage its critical
// layers waited in (the chain of parents, a download slot, the disk).
type layerTimes struct {
	start      time.Time
	slot       time.Time // holds a download slot
	downloaded time.Time // blob verified (and extracted, when streamed)
	sealed     time.Time // detached diff synced and measured
	parent     time.Time // parent layer recorded
	extracted  time.Time
	committed  time.Time // snapshot committed (data durable)
	recorded   time.Time
	streamed   bool // extracted while downloading
}

func (t *layerTimes) mark(at *time.Time) { *at = time.Now() }

func (j *layerJob) logTimes(ctx context.Context) {
	t := &j.times
	ms := func(at time.Time) int64 {
		if at.IsZero() {
			return -1
		}
		return at.Sub(t.start).Milliseconds()
	}
	j.s.log.LogAttrs(ctx, slog.LevelDebug, "layer pull stages (ms from job start, -1 not reached)",
		slog.String("layer", shortID(j.spec.desc.Digest)), slog.Int64("size", j.spec.desc.Size),
		slog.Time("start", t.start), slog.Bool("streamed", t.streamed),
		slog.Int64("slot", ms(t.slot)), slog.Int64("downloaded", ms(t.downloaded)), slog.Int64("sealed", ms(t.sealed)),
		slog.Int64("parent", ms(t.parent)), slog.Int64("extracted", ms(t.extracted)),
		slog.Int64("committed", ms(t.committed)), slog.Int64("recorded", ms(t.recorded)))
}
