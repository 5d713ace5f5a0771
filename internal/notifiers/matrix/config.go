package matrix

import (
	"regexp"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "matrix"

// Integration is the Matrix channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the matrix block of a channel: an m.notice per notification, sent into one room with
// the Client-Server API by a user (a bot account) that has joined it. The access token is a
// secret and only ever comes from the Secret; the homeserver and the room are not.
type Config struct {
	// Homeserver is the base URL of the Client-Server API, https://matrix.example.org (what the
	// server's /.well-known/matrix/client names as m.homeserver).
	Homeserver string `mapstructure:"homeserver"`
	// RoomID is the room's id, !opaque:server (Element: Room settings > Advanced), not an alias.
	RoomID string `mapstructure:"roomID"`
	// AccessTokenFrom names the Secret key holding the bot user's access token.
	AccessTokenFrom string `mapstructure:"accessTokenFrom"`
}

// roomIDRE is a room id: "!", an opaque local part, ":" and the server name; at most 255 bytes.
var roomIDRE = regexp.MustCompile(`^![^\s:/]+:[^\s/]+$`)

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	p.URL("homeserver", c.Homeserver)
	switch {
	case c.RoomID == "":
		p.Add("roomID: required: the room's id, !opaque:server (Element: Room settings > Advanced)")
	case strings.HasPrefix(c.RoomID, "#"):
		p.Add("roomID: %q is an alias: give the room's id, !opaque:server (Element: Room settings > Advanced)", c.RoomID)
	case !roomIDRE.MatchString(c.RoomID) || len(c.RoomID) > 255:
		p.Add("roomID: not a room id (!opaque:server)")
	}
	if c.AccessTokenFrom == "" {
		p.Add("accessTokenFrom: required: the Secret key holding the bot user's access token")
	}
	p.SecretKey("accessTokenFrom", c.AccessTokenFrom)
	return p
}
