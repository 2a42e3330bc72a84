// Command gantry-notify posts the run's Slack message, or updates it in
// place with this stage's result. A Slack failure is a warning, not a
// failed step, unless fail-on-error is set.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/slacknotify"
)

func main() { ghaction.Main(slacknotify.Stage) }
