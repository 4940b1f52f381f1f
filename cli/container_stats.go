package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// statsRow is one line of `stats`; field names are the --format keys.
type statsRow struct {
	BlockIO   string
	CPUPerc   string
	Container string
	ID        string
	MemPerc   string
	MemUsage  string
	Name      string
	NetIO     string
	PIDs      string
}

func statsHeaders() map[string]string {
	return map[string]string{
		"BlockIO": "BLOCK I/O", "CPUPerc": "CPU %", "Container": "CONTAINER", "ID": "CONTAINER ID", "MemPerc": "MEM %",
		"MemUsage": "MEM USAGE / LIMIT", "Name": "NAME", "NetIO": "NET I/O", "PIDs": "PIDS",
	}
}

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

func newStatsCommand(e *env) *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), e, args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.BoolVar(&o.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// statsEntry follows one container: the latest row, or the error that
// ended its stream.
type statsEntry struct {
	mu  sync.Mutex
	row statsRow
	err error
	got chan struct{} // closed at the first sample or error
}

func runStats(ctx context.Context, e *env, names []string, o statsOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		res, err := c.ContainerList(ctx, client.ContainerListOptions{All: o.all})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			names = append(names, s.ID)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make([]*statsEntry, len(names))
	for i, name := range names {
		entries[i] = &statsEntry{got: make(chan struct{}), row: statsRow{Container: name}}
		go follow(ctx, c, name, entries[i], !o.noStream, !o.noTrunc)
	}
	for _, en := range entries {
		select {
		case <-en.got:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := resolveFormat(o.format, "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
	if o.noStream {
		return printStats(e.stdout, f, entries, true)
	}
	_, isTerm := terminalFd(e.stdout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var buf bytes.Buffer
		if isTerm {
			buf.WriteString("\033[2J\033[H") // clear the screen, cursor home
		}
		if err := printStats(&buf, f, entries, false); err != nil {
			return err
		}
		if _, err := e.stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// printStats writes the rows; for a one-shot of named containers the
// errors of the ones that failed end the command.
func printStats(w io.Writer, f listFormat, entries []*statsEntry, reportErrors bool) error {
	var rows []statsRow
	var errs []string
	for _, en := range entries {
		en.mu.Lock()
		row, err := en.row, en.err
		en.mu.Unlock()
		if err != nil {
			if reportErrors {
				errs = append(errs, err.Error())
			}
			continue
		}
		rows = append(rows, row)
	}
	if err := writeList(w, f, statsHeaders(), rows); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// follow reads one container's stats, a stream or two samples a second
// apart, into en.
func follow(ctx context.Context, c *client.Client, name string, en *statsEntry, stream, trunc bool) {
	defer func() {
		select {
		case <-en.got:
		default:
			close(en.got)
		}
	}()
	res, err := c.ContainerStats(ctx, name, client.ContainerStatsOptions{Stream: stream, IncludePreviousSample: true})
	if err != nil {
		en.mu.Lock()
		en.err = err
		en.mu.Unlock()
		return
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				en.mu.Lock()
				en.err = err
				en.mu.Unlock()
			}
			return
		}
		en.mu.Lock()
		en.row = statsRowOf(name, s, trunc)
		en.mu.Unlock()
		select {
		case <-en.got:
		default:
			close(en.got)
		}
	}
}

// statsRowOf computes docker's figures: CPU share of the host over the
// sample interval, memory without the page cache, I/O sums.
func statsRowOf(name string, s container.StatsResponse, trunc bool) statsRow {
	r := statsRow{Container: name, ID: s.ID, Name: strings.TrimPrefix(s.Name, "/")}
	if trunc {
		r.ID = shortID(s.ID)
	}
	if r.Name == "" {
		r.Name = "--"
	}
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		cpu = cpuDelta / sysDelta * cpus * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < s.MemoryStats.Usage {
		mem -= float64(v) // cgroup v1
	} else if v := s.MemoryStats.Stats["inactive_file"]; v < s.MemoryStats.Usage {
		mem -= float64(v) // cgroup v2
	}
	memPerc := 0.0
	if s.MemoryStats.Limit != 0 {
		memPerc = mem / float64(s.MemoryStats.Limit) * 100
	}
	var rx, tx, read, write float64
	for _, n := range s.Networks {
		rx += float64(n.RxBytes)
		tx += float64(n.TxBytes)
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			read += float64(b.Value)
		case "write":
			write += float64(b.Value)
		}
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
	r.MemUsage = units.BytesSize(mem) + " / " + units.BytesSize(float64(s.MemoryStats.Limit))
	r.MemPerc = fmt.Sprintf("%.2f%%", memPerc)
	r.NetIO = units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3)
	r.BlockIO = units.HumanSizeWithPrecision(read, 3) + " / " + units.HumanSizeWithPrecision(write, 3)
	r.PIDs = fmt.Sprint(s.PidsStats.Current)
	return r
}
