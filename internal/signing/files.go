package signing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// runFiles signs (or verifies) the files of input "files" as blobs: each
// gets a Sigstore bundle beside it, <file>.sigstore.json, which `cosign
// verify-blob <file> --bundle <file>.sigstore.json` accepts.
func runFiles(ctx context.Context, in Inputs, log ghaction.Logger) (Outputs, error) {
	var out Outputs
	files, err := expandFiles(in.Files, in.Dir)
	if err != nil {
		return out, err
	}
	if in.Verify {
		p := in.policy()
		p.Log = log
		rep, err := VerifyFiles(ctx, files, p)
		out.Report, out.Verified = rep, rep.Verified
		if rep.Mode == "" {
			return out, err
		}
		if werr := finish(&out, in, ""); werr != nil {
			return out, errors.Join(err, werr)
		}
		return out, err
	}
	// Read everything before signing: a file that cannot be read stops the
	// run before a certificate is requested or anything is logged.
	contents := make([][]byte, len(files))
	for i, f := range files {
		if contents[i], err = os.ReadFile(f); err != nil {
			return out, fmt.Errorf(`input "files": %w`, err)
		}
	}
	signer, err := newSigner(ctx, in)
	if err != nil {
		return out, err
	}
	log.Infof("signing %d file(s) with %s", len(files), signer.Describe())
	signed, err := signFiles(ctx, signer, files, contents, in.Jobs, log)
	if err != nil {
		return out, err
	}
	for _, s := range signed {
		out.Bundles = append(out.Bundles, s.Bundle)
	}
	out.Report = Report{Mode: "sign", Signer: signer.Describe(), Tlog: in.tlogUsed(), Files: signed}
	return out, finish(&out, in, "")
}

// expandFiles turns the files input into paths (relative ones joined to
// dir): a plain path must be an existing file, a pattern (*, ?, [...], as
// path/filepath.Match; no **) must match at least one. Bundles
// (*.sigstore.json) a pattern matches are left out, so signing dist/* twice
// does not sign the first run's bundles. Every problem is reported at once.
func expandFiles(patterns []string, dir string) ([]string, error) {
	var out []string
	var errs []error
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, pat := range patterns {
		path := resolvePath(pat, dir)
		if !strings.ContainsAny(pat, "*?[") {
			fi, err := os.Stat(path)
			switch {
			case errors.Is(err, os.ErrNotExist):
				errs = append(errs, fmt.Errorf(`input "files": %s does not exist%s`, pat, relativeTo(pat, dir)))
			case err != nil:
				errs = append(errs, fmt.Errorf(`input "files": %w`, err))
			case fi.IsDir():
				errs = append(errs, fmt.Errorf(`input "files": %s is a directory: name its files, or a pattern such as %s`, pat, filepath.Join(pat, "*")))
			default:
				add(path)
			}
			continue
		}
		matches, err := filepath.Glob(path)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "files": %q is not a valid pattern: %w`, pat, err))
			continue
		}
		n := 0
		for _, m := range matches {
			if strings.HasSuffix(m, BundleSuffix) {
				continue
			}
			if fi, err := os.Stat(m); err != nil || fi.IsDir() {
				continue
			}
			add(m)
			n++
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf(`input "files": %s matches no file%s`, pat, relativeTo(pat, dir)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// relativeTo says what a relative path was looked up in, for messages.
func relativeTo(p, dir string) string {
	if filepath.IsAbs(p) {
		return ""
	}
	if dir == "" {
		dir, _ = os.Getwd()
	}
	return " (relative to " + dir + ")"
}

// signFiles signs every file, a few at a time, and only when all are
// signed writes the bundles: a failure leaves no new bundle behind.
func signFiles(ctx context.Context, signer Signer, files []string, contents [][]byte, limit int, log ghaction.Logger) ([]SignedFile, error) {
	if limit <= 0 {
		limit = 4
	}
	signed := make([]SignedFile, len(files))
	bundles := make([][]byte, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, f := range files {
		g.Go(func() error {
			b, err := signer.SignBlob(gctx, contents[i])
			if err != nil {
				return fmt.Errorf("signing %s: %w", f, err)
			}
			sum := sha256.Sum256(contents[i])
			signed[i] = SignedFile{File: f, SHA256: hex.EncodeToString(sum[:]), Bundle: f + BundleSuffix}
			bundles[i] = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := writeAll(signed, bundles); err != nil {
		return nil, err
	}
	for _, s := range signed {
		log.Infof("signed %s (sha256 %s) → %s", s.File, s.SHA256, s.Bundle)
	}
	return signed, nil
}

// writeAll writes every bundle to a temporary file beside its target and
// then renames them into place, so that an error while writing (a full
// disk, a read-only directory) leaves none of the new bundles.
func writeAll(signed []SignedFile, bundles [][]byte) error {
	temps := make([]string, 0, len(signed))
	cleanup := func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}
	for i, s := range signed {
		f, err := os.CreateTemp(filepath.Dir(s.Bundle), "."+filepath.Base(s.Bundle)+".*")
		if err != nil {
			cleanup()
			return fmt.Errorf("writing the bundle of %s: %w", s.File, err)
		}
		temps = append(temps, f.Name())
		_, err = f.Write(append(bundles[i], '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(f.Name(), 0o644)
		}
		if err != nil {
			cleanup()
			return fmt.Errorf("writing the bundle of %s: %w", s.File, err)
		}
	}
	for i, s := range signed {
		if err := os.Rename(temps[i], s.Bundle); err != nil {
			cleanup()
			return fmt.Errorf("writing the bundle of %s: %w", s.File, err)
		}
	}
	return nil
}

// VerifyFiles checks each file against its bundle <file>.sigstore.json
// with the policy (key, or keyless identity and source repository; Require
// must be empty: files carry no attestations). The report has one
// signature check per file; the error is a *VerificationError when one
// failed, or another error when verification could not be done at all.
func VerifyFiles(ctx context.Context, files []string, p Policy) (Report, error) {
	log := p.Log
	if log == nil {
		log = ghaction.Discard{}
	}
	if err := p.check(); err != nil {
		return Report{}, err
	}
	if len(p.Require) > 0 {
		return Report{}, errors.New(`input "require" applies to images: files carry no attestations, only their signature is verified; empty "require"`)
	}
	t, err := p.trust(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Mode: "verify", Policy: t.describes}
	log.Infof("verifying %d file(s) against %s", len(files), t.describes)
	for _, f := range files {
		path := resolvePath(f, p.Dir)
		chk := Check{File: path, What: "signature"}
		sf := SignedFile{File: path, Bundle: path + BundleSuffix}
		content, err := os.ReadFile(path)
		if err != nil {
			chk.Reason = fmt.Sprintf("cannot read the file: %v", err)
		} else {
			sum := sha256.Sum256(content)
			sf.SHA256 = hex.EncodeToString(sum[:])
			chk.Digest = "sha256:" + sf.SHA256
			chk.Passed, chk.Reason = verifyFile(t, path, sf.Bundle, sum[:])
		}
		status := "PASS"
		if !chk.Passed {
			status = "FAIL"
		}
		log.Infof("%s %s: %s", status, path, chk.Reason)
		rep.Checks = append(rep.Checks, chk)
		rep.Files = append(rep.Files, sf)
	}
	return rep.conclude()
}

// verifyFile checks one file against its bundle and says why it passed
// or failed.
func verifyFile(t *trust, path, bundle string, sum []byte) (bool, string) {
	raw, err := os.ReadFile(bundle)
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Sprintf("no bundle: %s does not exist (signing the file writes it there; download it next to the file)", bundle)
	}
	if err != nil {
		return false, fmt.Sprintf("cannot read the bundle: %v", err)
	}
	v, err := t.verifyBlob(raw, path, sum)
	if err != nil {
		return false, err.Error()
	}
	return true, "signed by " + signerOf(v)
}
