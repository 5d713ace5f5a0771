package teams

import "github.com/kpulse/kpulse/internal/notifiers"

// The names the render tests call the shared fitting by (notifiers.Fitter, JSON bytes).
var (
	encodedLen = notifiers.JSONLen
	fitText    = fit.Text
	fitLines   = fit.Lines
	fitList    = fit.List
)
