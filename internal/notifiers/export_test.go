package notifiers

// The helpers the external tests (package notifiers_test, which may use notifierstest) drive
// directly.
var (
	Truncate      = truncate
	Sanitize      = sanitize
	Clean         = clean
	TextOf        = text
	HumanDuration = humanDuration
	Ellipsis      = ellipsis
)
