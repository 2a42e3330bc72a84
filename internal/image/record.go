package image

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/release"
)

// buildRecord is the build stage's section of gantry-release.json.
type buildRecord struct {
	Pushed        bool             `json:"pushed"`
	UploadedBytes int64            `json:"uploadedBytes"`
	Platforms     []PlatformResult `json:"platforms"`
}

func writeRelease(in Inputs, out Outputs, repo name.Repository) (string, error) {
	r := release.ForDigest(in.ReleaseFile, out.Digest)
	r.Image, r.Repository, r.Digest, r.Tags, r.Base = out.Image, repo.String(), out.Digest, out.Tags, out.Base
	r.Created = in.Created
	r.Platforms = nil
	for _, p := range out.Platforms {
		r.Platforms = append(r.Platforms, release.Platform{Platform: p.Platform, Digest: p.Digest, Size: p.Size})
	}
	r.Source = release.Source{
		Repository: in.Git.Repository,
		URL:        in.Git.SourceURL(),
		Revision:   in.Git.SHA,
		Ref:        in.Git.Ref,
		Event:      in.Git.EventName,
		RunURL:     in.Git.RunURL,
	}
	if err := r.SetStage("build", buildRecord{Pushed: out.Pushed, UploadedBytes: out.Uploaded, Platforms: out.Platforms}); err != nil {
		return "", err
	}
	p, err := release.Write(in.ReleaseFile, r)
	if err != nil {
		return "", fmt.Errorf(`writing the release record (input "release-file" = %q): %w`, in.ReleaseFile, err)
	}
	return p, nil
}
