package config

import "time"

// Silences bound the silences made through the admin API (/api/v1/silences, kpulse silence).
type Silences struct {
	// Retention is how long an expired silence is kept, for the record, before it is dropped.
	Retention time.Duration `mapstructure:"retention"`
	// MaxDuration bounds how long one silence lasts, and how far ahead it may start.
	MaxDuration time.Duration `mapstructure:"maxDuration"`
}

func (s Silences) validate(add func(string, ...any)) {
	if s.Retention <= 0 {
		add("silences.retention: must be greater than 0 (got %s)", s.Retention)
	}
	if s.MaxDuration <= 0 {
		add("silences.maxDuration: must be greater than 0 (got %s)", s.MaxDuration)
	}
}
