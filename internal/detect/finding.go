package detect

// DeepCopy returns a copy of f that shares no memory with it.
func (f Finding) DeepCopy() Finding {
	if f.ExitCode != nil {
		code := *f.ExitCode
		f.ExitCode = &code
	}
	return f
}
