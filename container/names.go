package container

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"regexp"
)

// validName is Docker's container name rule.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Words for generated names ("steady_harbor"), berth's own lists.
var (
	nameAdjectives = []string{
		"amber", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "daring", "eager",
		"fair", "fast", "gentle", "glad", "grand", "happy", "hardy", "keen", "kind", "lively",
		"loyal", "lucid", "merry", "mighty", "modest", "nimble", "noble", "plucky", "polite", "proud",
		"quick", "quiet", "rapid", "ready", "robust", "serene", "sharp", "shiny", "silent", "sleek",
		"snug", "solid", "steady", "stoic", "sturdy", "swift", "tidy", "trusty", "vivid", "wise",
	}
	nameNouns = []string{
		"anchor", "bay", "beacon", "bollard", "bow", "buoy", "cabin", "canal", "cargo", "channel",
		"compass", "cove", "crane", "current", "deck", "dock", "dory", "ferry", "fjord", "fleet",
		"gangway", "harbor", "haven", "helm", "hull", "inlet", "jetty", "keel", "ketch", "lagoon",
		"lantern", "lighthouse", "mast", "mooring", "oar", "pier", "pilot", "port", "quay", "rudder",
		"sail", "schooner", "shoal", "skiff", "slip", "sloop", "tide", "tugboat", "wharf", "yawl",
	}
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// generateName returns a free name; after many clashes it adds a digit as
// Docker does.
func generateName(taken func(string) bool) string {
	for i := 0; ; i++ {
		name := "/" + pick(nameAdjectives) + "_" + pick(nameNouns)
		if i > 10 {
			name += string(rune('0' + i%10))
		}
		if !taken(name) {
			return name
		}
	}
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
