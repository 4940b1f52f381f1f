package cli

import "github.com/spf13/cobra"

// containerCommands is the container group: `berth container ...`, the
// top-level shortcuts docker has for it, and `events` (also under
// `system`).
func containerCommands(e *env) []*cobra.Command {
	mgmt := containerManagement(e)
	common := func(c *cobra.Command) *cobra.Command {
		c.Annotations[annotCategory] = "common"
		return c
	}
	return []*cobra.Command{
		mgmt,
		aliases(newAttachCommand(e), "berth container attach", "berth attach"),
		aliases(newCpCommand(e), "berth container cp", "berth cp"),
		aliases(newCreateCommand(e), "berth container create", "berth create"),
		aliases(newDiffCommand(e), "berth container diff", "berth diff"),
		common(aliases(newExecCommand(e), "berth container exec", "berth exec")),
		aliases(newExportCommand(e), "berth container export", "berth export"),
		aliases(newKillCommand(e), "berth container kill", "berth kill"),
		aliases(newLogsCommand(e), "berth container logs", "berth logs"),
		common(aliases(newPsCommand(e, "ps"), "berth container ls", "berth container list", "berth container ps", "berth ps")),
		aliases(newPauseCommand(e, true), "berth container pause", "berth pause"),
		aliases(newPortCommand(e), "berth container port", "berth port"),
		aliases(newRenameCommand(e), "berth container rename", "berth rename"),
		aliases(newStopCommand(e, true), "berth container restart", "berth restart"),
		aliases(newRemoveContainerCommand(e), "berth container rm", "berth container remove", "berth rm"),
		common(aliases(newRunCommand(e), "berth container run", "berth run")),
		aliases(newStartCommand(e), "berth container start", "berth start"),
		aliases(newStatsCommand(e), "berth container stats", "berth stats"),
		aliases(newStopCommand(e, false), "berth container stop", "berth stop"),
		aliases(newTopCommand(e), "berth container top", "berth top"),
		aliases(newPauseCommand(e, false), "berth container unpause", "berth unpause"),
		aliases(newWaitCommand(e), "berth container wait", "berth wait"),
		aliases(newEventsCommand(e), "berth system events", "berth events"),
		managementCommand(e, "system", "Manage berth", aliases(newEventsCommand(e), "berth system events", "berth events")),
	}
}

// containerManagement is `berth container` and its subcommands.
func containerManagement(e *env) *cobra.Command {
	mgmt := managementCommand(e, "container", "Manage containers",
		aliases(newAttachCommand(e), "berth container attach", "berth attach"),
		aliases(newCpCommand(e), "berth container cp", "berth cp"),
		aliases(newCreateCommand(e), "berth container create", "berth create"),
		aliases(newDiffCommand(e), "berth container diff", "berth diff"),
		aliases(newExecCommand(e), "berth container exec", "berth exec"),
		aliases(newExportCommand(e), "berth container export", "berth export"),
		newContainerInspectCommand(e),
		aliases(newKillCommand(e), "berth container kill", "berth kill"),
		aliases(newLogsCommand(e), "berth container logs", "berth logs"),
		aliases(newPsCommand(e, "ls"), "berth container ls", "berth container list", "berth container ps", "berth ps"),
		aliases(newPauseCommand(e, true), "berth container pause", "berth pause"),
		aliases(newPortCommand(e), "berth container port", "berth port"),
		newContainerPruneCommand(e),
		aliases(newRenameCommand(e), "berth container rename", "berth rename"),
		aliases(newStopCommand(e, true), "berth container restart", "berth restart"),
		aliases(newRemoveContainerCommand(e), "berth container rm", "berth container remove", "berth rm"),
		aliases(newRunCommand(e), "berth container run", "berth run"),
		aliases(newStartCommand(e), "berth container start", "berth start"),
		aliases(newStatsCommand(e), "berth container stats", "berth stats"),
		aliases(newStopCommand(e, false), "berth container stop", "berth stop"),
		aliases(newTopCommand(e), "berth container top", "berth top"),
		aliases(newPauseCommand(e, false), "berth container unpause", "berth unpause"),
		aliases(newWaitCommand(e), "berth container wait", "berth wait"),
	)
	for _, sub := range mgmt.Commands() {
		switch sub.Name() {
		case "ls":
			sub.Aliases = []string{"list", "ps"}
		case "rm":
			sub.Aliases = []string{"remove"}
		}
	}
	return mgmt
}
