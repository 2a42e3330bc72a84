package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"

	"github.com/gantry-ci/gantry/internal/human"
)

// push writes the index by digest — go-containerregistry uploads missing
// blobs (each once, mounting from the base repository when it can), then each
// platform manifest, then the index — and only then moves the tags.
func push(ctx context.Context, reg *registries, log ghaction.Logger, repo name.Repository, idx v1.ImageIndex, tags []string) (int64, error) {
	digest, err := idx.Digest()
	if err != nil {
		return 0, err
	}
	end := log.Group(fmt.Sprintf("Pushing %s@%s", repo, digest))
	defer end()

	progress := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last time.Time
		for u := range progress {
			if u.Error != nil || u.Total == 0 {
				continue
			}
			if time.Since(last) > 2*time.Second || u.Complete == u.Total {
				log.Infof("push: %s / %s", human.Bytes(u.Complete), human.Bytes(u.Total))
				last = time.Now()
			}
		}
	}()
	target := repo.Digest(digest.String())
	err = remote.WriteIndex(target, idx, append(reg.options(ctx), remote.WithProgress(progress))...)
	<-done
	uploaded := reg.counter.uploaded.Load()
	if err != nil {
		return uploaded, fmt.Errorf("pushing %s (no tag was moved): %w", target, err)
	}
	log.Infof("pushed index %s (%s of blobs uploaded)", target, human.Bytes(uploaded))
	var errs []error
	for _, t := range tags {
		tag := repo.Tag(t)
		if err := remote.Put(tag, idx, reg.options(ctx)...); err != nil {
			errs = append(errs, fmt.Errorf("tagging %s: %w", tag, err))
			continue
		}
		log.Infof("tagged %s", tag)
	}
	return uploaded, errors.Join(errs...)
}

// writeLayout adds the index to an OCI image layout directory (created when
// missing), named by its first tag.
func writeLayout(dir string, idx v1.ImageIndex, tags []string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	if len(tags) == 0 {
		return p.AppendIndex(idx)
	}
	const refName = "org.opencontainers.image.ref.name"
	ann := map[string]string{refName: tags[0]}
	return p.ReplaceIndex(idx, match.Annotation(refName, tags[0]), layout.WithAnnotations(ann))
}
