package ghrelease

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-github/v84/github"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/human"
	"github.com/gantry-ci/gantry/internal/release"
)

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// plan is everything decided before GitHub is called.
type plan struct {
	s          settings
	assets     []localAsset
	record     *release.Record
	verify     verifyPlan
	changelog  changelogNotes
	prerelease bool
	makeLatest string // "true", "false", "legacy"
	commitish  string
}

// Run creates or updates the release of the tag. Every input, file and
// glob is checked before GitHub is called, so a broken build fails without
// touching the release. A new release is created as a draft and published
// only after every asset is uploaded; when an upload fails, the error names
// the asset and the release stays a draft for a re-run to finish. The
// returned Outputs describe the release as far as it got.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if in.Log == nil {
		in.Log = ghaction.Discard{}
	}
	log := in.Log
	var out Outputs
	s, err := in.resolve()
	if err != nil {
		return out, err
	}
	out.Tag = s.tag
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}

	tmp, err := os.MkdirTemp("", "gantry-release-*")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(tmp)
	end := log.Group("Preparing release " + s.tag)
	p, err := prepare(&in, s, tmp)
	end()
	if err != nil {
		return out, err
	}
	out.Prerelease = p.prerelease
	out.NotesDetail = p.changelog.Detail
	if p.verify.Doc {
		out.Verify = p.verify.markdown()
	}

	c := newClient(&in, s)
	end = log.Group(fmt.Sprintf("Release %s of %s/%s", s.tag, s.owner, s.repo))
	defer end()
	existing, err := c.find(ctx, s.tag)
	if err != nil {
		return out, err
	}
	if existing != nil {
		state := "published"
		if existing.GetDraft() {
			state = "a draft"
		}
		log.Infof("release %s exists (id %d, %s): updating it", s.tag, existing.GetID(), state)
		if existing.GetImmutable() && !existing.GetDraft() && len(p.assets) > 0 {
			return out, fmt.Errorf("release %s (%s) is published and immutable (the repository's immutable releases setting), so its assets cannot be replaced: release a new tag, or turn the setting off and delete the release before re-running", s.tag, existing.GetHTMLURL())
		}
	}

	var generated string
	if s.generate == "true" || s.generate == "auto" && !p.changelog.Found {
		if generated, err = c.generateNotes(ctx, s.tag, p.commitish); err != nil {
			return out, fmt.Errorf(`%w (input "generate-notes": set it to false to release without GitHub's generated notes)`, err)
		}
	}
	if !p.changelog.Found {
		if s.generate == "false" {
			log.Warningf("%s and generate-notes is false: the release notes have no text of their own (headings such as ## [1.2.3] - 2026-11-26, ## 1.2.3 or ## v1.2.3 name a version's section)", p.changelog.Detail)
		} else {
			log.Infof("%s: using GitHub's generated notes", p.changelog.Detail)
		}
	} else {
		log.Infof("notes from %s", p.changelog.Detail)
	}
	var tail []string
	if p.record != nil {
		tail = append(tail, imageSection(*p.record))
	}
	if p.verify.Doc {
		tail = append(tail, p.verify.notesSection())
	}
	body, source := composeNotes(p.changelog, generated, tail...)
	out.Notes, out.NotesSource = body, source
	if source == SourceChangelog && generated != "" {
		out.NotesDetail += ", then GitHub's generated notes"
	} else if source == SourceGenerated {
		out.NotesDetail = "GitHub's generated notes (" + p.changelog.Detail + ")"
	}

	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = s.tag
	}
	want := func(draft bool) *github.RepositoryRelease {
		r := &github.RepositoryRelease{
			Name:       github.Ptr(name),
			Body:       github.Ptr(body),
			Prerelease: github.Ptr(p.prerelease),
			Draft:      github.Ptr(draft),
		}
		if !draft {
			r.MakeLatest = github.Ptr(p.makeLatest)
		}
		return r
	}

	rel := existing
	switch {
	case rel == nil:
		// A draft first: nobody sees the release, and no "release
		// published" event fires, until every asset is there.
		r := want(true)
		r.TagName = github.Ptr(s.tag)
		if p.commitish != "" {
			// Used by GitHub only when the tag does not exist yet: then the
			// tag is made on the commit that was built, not on the tip of
			// the default branch.
			r.TargetCommitish = github.Ptr(p.commitish)
		}
		if rel, err = c.create(ctx, r); err != nil {
			return out, err
		}
		out.Created = true
		log.Infof("created draft release %s (id %d)", s.tag, rel.GetID())
	case in.Draft && !rel.GetDraft():
		log.Warningf("release %s is published and input \"draft\" is true: turning it back into a draft", s.tag)
		if rel, err = c.edit(ctx, rel.GetID(), &github.RepositoryRelease{Draft: github.Ptr(true)}, "turning release "+s.tag+" into a draft"); err != nil {
			return out, err
		}
	}
	out.ReleaseID, out.URL, out.Draft = rel.GetID(), rel.GetHTMLURL(), rel.GetDraft()
	out.Assets = JSONList{}

	if len(p.assets) > 0 {
		old, err := c.assets(ctx, rel.GetID())
		if err != nil {
			return out, err
		}
		byName := map[string]*github.ReleaseAsset{}
		for _, a := range old {
			byName[a.GetName()] = a
		}
		for _, a := range p.assets {
			if o := byName[a.Name]; o != nil {
				if err := c.deleteAsset(ctx, o); err != nil {
					return out, uploadFailed(s.tag, rel, a, err)
				}
				log.Infof("replacing asset %s", a.Name)
			}
			up, err := c.upload(ctx, rel, a)
			if err != nil {
				return out, uploadFailed(s.tag, rel, a, err)
			}
			if up.GetName() != a.Name {
				log.Warningf("GitHub stored the asset %s as %s (it renames special characters): name the file %s to keep the names equal", a.Name, up.GetName(), up.GetName())
			}
			out.Assets = append(out.Assets, up.GetName())
			out.Uploaded = append(out.Uploaded, UploadedAsset{Name: up.GetName(), Size: int64(up.GetSize()), Digest: a.Digest, URL: up.GetBrowserDownloadURL()})
			log.Infof("uploaded %s (%s, %s)", up.GetName(), human.Bytes(a.Size), a.Digest)
		}
	}

	op := "publishing release " + s.tag
	switch {
	case in.Draft:
		op = "updating draft release " + s.tag
	case !rel.GetDraft():
		op = "updating release " + s.tag
	}
	final, err := c.edit(ctx, rel.GetID(), want(in.Draft), op)
	if err != nil {
		if rel.GetDraft() {
			err = fmt.Errorf("%w; every asset is uploaded but the release is still a draft (%s): re-run the job to publish it", err, rel.GetHTMLURL())
		}
		return out, err
	}
	out.URL, out.Draft, out.Prerelease = final.GetHTMLURL(), final.GetDraft(), final.GetPrerelease()
	if !in.Draft {
		out.MakeLatest = p.makeLatest
	}
	switch {
	case in.Draft:
		log.Infof("release %s is a draft: %s", s.tag, out.URL)
	case rel.GetDraft():
		log.Infof("published release %s: %s", s.tag, out.URL)
	default:
		log.Infof("updated release %s: %s", s.tag, out.URL)
	}
	return out, nil
}

// uploadFailed explains a failed upload and the state it leaves.
func uploadFailed(tag string, rel *github.RepositoryRelease, a localAsset, err error) error {
	if rel.GetDraft() {
		return fmt.Errorf("asset %s (%s) was not uploaded: %w; release %s is left a draft (%s), unseen by users: fix the cause and re-run the job, which finishes this draft", a.Name, a.Path, err, tag, rel.GetHTMLURL())
	}
	return fmt.Errorf("asset %s (%s) was not uploaded: %w; release %s stays published without it: re-run the job to upload it", a.Name, a.Path, err, tag)
}

// prepare does everything that needs no network: files, globs, the
// release record, the changelog, VERIFY.md and the flags.
func prepare(in *Inputs, s settings, tmp string) (plan, error) {
	p := plan{s: s}
	log := in.Log
	var errs []error
	assets, err := resolveAssets(in.Dir, in.Assets)
	errs = append(errs, err)
	p.assets = assets

	var recordName string
	if in.ReleaseFile != "" {
		path := in.ReleaseFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(in.Dir, path)
		}
		rec, err := release.Read(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf(`input "release-file": %s does not exist: pass the release-file the build stage wrote (download its artifact first in another job), or leave the input empty`, in.ReleaseFile))
		case err != nil:
			errs = append(errs, fmt.Errorf(`input "release-file": %w`, err))
		case rec.Image == "" || rec.Digest == "":
			errs = append(errs, fmt.Errorf(`input "release-file": %s names no image: it must be the record gantry-build wrote`, in.ReleaseFile))
		default:
			p.record = &rec
			abs, _ := filepath.Abs(path)
			recordName = filepath.Base(abs)
			fi, err := os.Stat(abs)
			if err == nil {
				d, derr := fileDigest(abs)
				errs = append(errs, derr)
				p.assets = addAsset(p.assets, localAsset{Path: abs, Name: recordName, Size: fi.Size(), Digest: d, ContentType: contentType(recordName), From: `input "release-file"`}, &errs)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	if err := checkChecksums(p.assets); err != nil {
		return p, err
	}

	p.commitish = in.Git.SHA
	if p.record != nil && commitRE.MatchString(p.record.Source.Revision) {
		p.commitish = p.record.Source.Revision
	}
	if !commitRE.MatchString(p.commitish) {
		p.commitish = ""
	}

	serverURL := in.Git.ServerURL
	if serverURL == "" {
		serverURL = "https://github.com"
	}
	var rec release.Record
	if p.record != nil {
		rec = *p.record
	}
	vp, err := planVerify(in, s, rec, recordName, p.assets, serverURL)
	if err != nil {
		return p, err
	}
	p.verify = vp
	if s.sourceRepo != "" && !vp.hasKeyless() {
		log.Warningf("input \"verify-source-repository\" is set, but VERIFY.md has no keyless cosign command to check it: it is not used (it needs verify-certificate-identity-regexp and a keyless-signed image or Sigstore bundle)")
	}
	if vp.Doc {
		extra := []struct {
			name string
			data []byte
		}{{VerifyFile, []byte(vp.markdown())}}
		if vp.KeyAsset != nil {
			extra = append(extra, struct {
				name string
				data []byte
			}{"cosign.pub", vp.KeyAsset})
		}
		for _, x := range extra {
			path := filepath.Join(tmp, x.name)
			if err := os.WriteFile(path, x.data, 0o644); err != nil {
				return p, err
			}
			d, err := fileDigest(path)
			if err != nil {
				return p, err
			}
			var errs []error
			p.assets = addAsset(p.assets, localAsset{Path: path, Name: x.name, Size: int64(len(x.data)), Digest: d, ContentType: contentType(x.name), From: "this stage"}, &errs)
			if err := errors.Join(errs...); err != nil {
				return p, err
			}
		}
		what := fmt.Sprintf("%d signed files, %d checksums files", len(vp.Blobs), len(vp.Checksums))
		if p.record != nil {
			what += ", image " + p.record.Image
		}
		log.Infof("VERIFY.md: %d commands (%s)", len(vp.commands()), what)
	}

	cl, err := readChangelog(in.Dir, in.Changelog, s.tag)
	if err != nil {
		return p, err
	}
	p.changelog = cl

	switch s.prerelease {
	case "auto":
		p.prerelease = IsPrerelease(s.tag)
	default:
		p.prerelease = s.prerelease == "true"
	}
	switch {
	case p.prerelease:
		if s.makeLatest == "true" {
			log.Warningf("input \"make-latest\" is true but %s is a prerelease, and a prerelease is never made the latest release: leaving the latest release as it is", s.tag)
		}
		p.makeLatest = "false"
	case s.makeLatest == "auto":
		// GitHub's "legacy": latest by creation date and semantic version,
		// so a patch of an older line (1.4.1 after 2.0.0) does not take over.
		p.makeLatest = "legacy"
	default:
		p.makeLatest = s.makeLatest
	}
	for _, a := range p.assets {
		log.Infof("asset %s (%s) from %s", a.Name, human.Bytes(a.Size), a.From)
	}
	log.Infof("prerelease: %v (input %q); make_latest: %s", p.prerelease, s.prerelease, p.makeLatest)
	return p, nil
}

// addAsset adds an asset the stage itself contributes (the release
// record, VERIFY.md), unless the assets input already holds that file; a
// different file of the same name is an error.
func addAsset(list []localAsset, a localAsset, errs *[]error) []localAsset {
	for _, x := range list {
		if x.Path == a.Path {
			return list
		}
		if x.Name == a.Name {
			*errs = append(*errs, fmt.Errorf(`input "assets": %s would replace the %s this stage attaches (from %s): rename the file or drop it from assets`, x.Path, a.Name, a.From))
			return list
		}
	}
	return append(list, a)
}
