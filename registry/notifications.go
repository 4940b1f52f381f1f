package registry

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"berth/registry/notify"
	"berth/registry/server"
)

// NotificationsConfig lists the webhook endpoints that receive the
// registry's events (see registry/notify and README.md).
type NotificationsConfig struct {
	Endpoints []EndpointConfig `json:"endpoints"`
}

// EndpointConfig is one webhook endpoint, with the CNCF registry's field
// names where it has them.
type EndpointConfig struct {
	Name       string              `json:"name"`
	URL        string              `json:"url"`
	Headers    map[string][]string `json:"headers"`
	Timeout    Duration            `json:"timeout"`    // one POST (default 5s)
	Threshold  int                 `json:"threshold"`  // failures in a row that mark it down (default 3)
	Backoff    Duration            `json:"backoff"`    // first retry delay, doubled per failure (default 1s)
	MaxBackoff Duration            `json:"maxBackoff"` // (default 5m)
	QueueSize  int                 `json:"queueSize"`  // events held while it lags (default 10000)
	Ignore     IgnoreConfig        `json:"ignore"`
	Disabled   bool                `json:"disabled"`
}

// IgnoreConfig filters events out by action (push, pull, mount, delete) or
// target media type.
type IgnoreConfig struct {
	Actions    []string `json:"actions"`
	MediaTypes []string `json:"mediaTypes"`
}

// notifyConfig converts the configuration; sourceAddr names this registry
// in events: the host name with the listening port.
func (c Config) notifyConfig() notify.Config {
	var out notify.Config
	for _, e := range c.Notifications.Endpoints {
		out.Endpoints = append(out.Endpoints, notify.Endpoint{
			Name: e.Name, URL: e.URL, Headers: http.Header(e.Headers), Timeout: time.Duration(e.Timeout),
			Threshold: e.Threshold, Backoff: time.Duration(e.Backoff), MaxBackoff: time.Duration(e.MaxBackoff),
			QueueSize: e.QueueSize, IgnoredActions: e.Ignore.Actions, IgnoredMediaTypes: e.Ignore.MediaTypes, Disabled: e.Disabled,
		})
	}
	host, _ := os.Hostname()
	if _, port, err := net.SplitHostPort(c.Addr); err == nil && host != "" {
		out.SourceAddr = net.JoinHostPort(host, port)
	}
	return out
}

// notifier starts webhook delivery when endpoints are configured; the sink
// is nil (an untyped nil, so the server sends nothing) otherwise.
func (c Config) notifier(log *slog.Logger) (*notify.Notifier, server.EventSink, error) {
	if len(c.Notifications.Endpoints) == 0 {
		return nil, nil, nil
	}
	n, err := notify.New(c.notifyConfig(), log)
	if err != nil {
		return nil, nil, err
	}
	return n, n, nil
}
