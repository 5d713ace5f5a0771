package config

import "time"

// Enrichment tunes the context added to firing messages: recent Warning events and the last log
// lines of the crashed container. Fetches run after detection, bounded in time, size and
// concurrency; a failed fetch leaves that part out and the alert still goes.
type Enrichment struct {
	// Events is how many recent Warning events to show; 0 turns events off.
	Events int `mapstructure:"events"`
	// LogLines is how many lines of the previous container's log to show; 0 turns logs off.
	LogLines int `mapstructure:"logLines"`
	// LogBytes caps the bytes read from a log.
	LogBytes int `mapstructure:"logBytes"`
	// Timeout bounds the fetches for one message.
	Timeout time.Duration `mapstructure:"timeout"`
	// Concurrency bounds how many messages are being enriched at once.
	Concurrency int `mapstructure:"concurrency"`
}

func (e Enrichment) validate(add func(string, ...any)) {
	if e.Events < 0 || e.Events > 50 {
		add("enrichment.events: must be 0 (off) to 50 (got %d)", e.Events)
	}
	if e.LogLines < 0 || e.LogLines > 500 {
		add("enrichment.logLines: must be 0 (off) to 500 (got %d)", e.LogLines)
	}
	if e.LogBytes < 1024 || e.LogBytes > 1<<20 {
		add("enrichment.logBytes: must be 1024 to 1048576 (got %d)", e.LogBytes)
	}
	if e.Timeout <= 0 {
		add("enrichment.timeout: must be greater than 0 (got %s)", e.Timeout)
	}
	if e.Concurrency < 1 || e.Concurrency > 64 {
		add("enrichment.concurrency: must be 1 to 64 (got %d)", e.Concurrency)
	}
}
