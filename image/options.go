package image

// ListOptions selects images for `images`.
type ListOptions struct {
	All     bool                // include intermediate images
	Filters map[string][]string // dangling, reference, label, before, since
}

// DeleteOptions tunes `rmi`.
type DeleteOptions struct {
	Force   bool // remove even if tagged several times or used by a stopped container
	NoPrune bool // keep untagged parents
}

// ImportOptions describes `import`: a rootfs tar becomes a one-layer image.
type ImportOptions struct {
	Ref      string   // optional repo[:tag] to tag the result with
	Message  string   // history comment; Docker's default is "Imported from <src>"
	Source   string   // "-" or the URL, for the default comment
	Changes  []string // Dockerfile instructions: CMD, ENV, ...
	Platform string   // os/arch; defaults to the host's
}
