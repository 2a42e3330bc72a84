package rollout

// SetCheckpoint makes f see every checkpoint a deploy passes (the
// kill-point tests' runner process stops itself at one); it returns the
// function that puts the no-op back.
func SetCheckpoint(f func(point string)) (restore func()) {
	prev := checkpoint
	checkpoint = f
	return func() { checkpoint = prev }
}
