package metadata

import (
	"path"
	"time"
)

// OCI returns the org.opencontainers.image.* annotations for an image built
// in context c: source, revision, created, version, title, licenses,
// description and url. Empty values are left out rather than written empty.
// repoPath (the image repository without registry) names the image when the
// GitHub repository is unknown, as in a local run.
func OCI(c Context, created time.Time, tags []string, repoPath string) map[string]string {
	title := path.Base(c.Repository)
	if c.Repository == "" {
		title = path.Base(repoPath)
	}
	version := ""
	if v, ok := ParseSemver(c.Tag()); ok {
		version = v.String()
	} else if len(tags) > 0 {
		version = tags[0]
	}
	m := map[string]string{
		"org.opencontainers.image.created":     created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.source":      c.SourceURL(),
		"org.opencontainers.image.url":         c.SourceURL(),
		"org.opencontainers.image.revision":    c.SHA,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.licenses":    c.License,
		"org.opencontainers.image.description": c.Description,
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}
