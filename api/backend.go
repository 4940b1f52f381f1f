package api

import (
	"context"
	"io"

	"berth/image"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// ImageBackend is what the image routes need of the image service.
type ImageBackend interface {
	Images(ctx context.Context, opts image.ListOptions) ([]imagetypes.Summary, error)
	// ImageInspect returns the wire document plus the legacy fields that
	// clients up to API 1.51 show (Parent, DockerVersion, Container...).
	ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error)
	ImageHistory(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error)
	TagImage(ctx context.Context, source, target string) error
	ImageDelete(ctx context.Context, ref string, opts image.DeleteOptions) ([]imagetypes.DeleteResponse, error)
	ImagesPrune(ctx context.Context, all bool, filters map[string][]string) (imagetypes.PruneReport, error)
	// ImportImage reads a rootfs tar (any supported compression) and returns
	// the new image's ID ("sha256:…").
	ImportImage(ctx context.Context, src io.Reader, opts image.ImportOptions) (string, error)
}

// SystemBackend answers /info and /system/df.
type SystemBackend interface {
	Info(ctx context.Context) (system.Info, error)
	DiskUsage(ctx context.Context) (system.DiskUsage, error)
}
