package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
)

// demoNotify runs gantry-notify the way a release workflow's jobs would,
// against a local Slack workspace (slack-go's slacktest server): the build
// job posts the run's message, the staging deploy updates it in place when
// it starts and when it ends, each step knowing only the previous step's
// ts and channel-id outputs. It prints the final message.
func demoNotify(ctx context.Context, w io.Writer, root, bin, work, image string) error {
	step(w, "Notify: Slack (gantry-notify against a local slacktest workspace: one message, updated in place)")
	ws := notifytest.Start()
	defer ws.Close()
	base := map[string]string{
		"INPUT_TOKEN":       notifytest.Token,
		"INPUT_API-URL":     ws.APIURL(),
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_EVENT_PATH": filepath.Join(root, "testdata", "events", "push-tag.json"),
		"GITHUB_REF":        "refs/tags/v1.2.3",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID":     "4242",
		"GITHUB_RUN_NUMBER": "57",
		"GITHUB_WORKFLOW":   "Release",
		"GITHUB_ACTOR":      "mara-okafor",
	}
	ts, channel := "", "#deploys"
	for _, s := range []struct{ stage, env, status, text, image string }{
		{stage: "build", status: "success", image: image},
		{stage: "deploy", env: "staging", status: "started"},
		{stage: "deploy", env: "staging", status: "success", text: "Rolled out **2/2** pods, digest pinned"},
	} {
		env := maps.Clone(base)
		env["INPUT_STAGE"], env["INPUT_ENVIRONMENT"], env["INPUT_STATUS"] = s.stage, s.env, s.status
		env["INPUT_TEXT"], env["INPUT_IMAGE"] = s.text, s.image
		env["INPUT_CHANNEL"], env["INPUT_MESSAGE-TS"] = channel, ts
		out, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-notify"), work, env)
		if err != nil {
			return err
		}
		verb := "posted"
		if ts != "" {
			verb = "updated"
		}
		ts, channel = out["ts"], out["channel-id"]
		fmt.Fprintf(w, "  %-6s %-8s %-8s %s message ts=%s channel-id=%s\n", s.stage, s.env, s.status, verb, ts, channel)
	}
	msg, ok := ws.Message(channel, ts)
	if !ok {
		return fmt.Errorf("the workspace has no message %s in %s", ts, channel)
	}
	fmt.Fprintf(w, "  messages in the workspace: %d; the final message:\n", len(ws.Messages()))
	fmt.Fprint(w, indent(notifytest.Preview(msg), "    "))
	return nil
}
