// Package ghreleasetest runs a stand-in for the part of GitHub's REST API
// that gantry-release uses: releases, their generated notes and their
// assets (https://docs.github.com/en/rest/releases). It answers over real
// HTTP with payloads shaped like GitHub's documented responses, keeps what
// it is sent (release fields and asset bytes) for a test to read back, and
// can fail chosen requests (5xx, secondary rate limit) to exercise retries.
//
// It mimics the GitHub behaviours a release tool must cope with: a draft is
// not found by GET /releases/tags/{tag} (only by listing releases), two
// published releases cannot share a tag, an asset name is unique within a
// release, uploads go to the upload_url the release hands out (a different
// path from the API), and an asset reports the sha256 digest of its bytes.
//
// The workflow tests under act use it too, so it depends on nothing but the
// standard library.
package ghreleasetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token is the only token the server accepts (as "Bearer <token>" or
// "token <token>"); anything else is answered 401 Bad credentials.
const Token = "ghs_gantryReleaseTestToken7Qx2Lm9Vb4Kd8Rz1"

// Routes name the endpoints for FailNext and Call.Route.
const (
	RouteListReleases  = "GET /repos/{owner}/{repo}/releases"
	RouteCreateRelease = "POST /repos/{owner}/{repo}/releases"
	RouteGenerateNotes = "POST /repos/{owner}/{repo}/releases/generate-notes"
	RouteGetByTag      = "GET /repos/{owner}/{repo}/releases/tags/{tag}"
	RouteGetRelease    = "GET /repos/{owner}/{repo}/releases/{id}"
	RouteUpdateRelease = "PATCH /repos/{owner}/{repo}/releases/{id}"
	RouteDeleteRelease = "DELETE /repos/{owner}/{repo}/releases/{id}"
	RouteListAssets    = "GET /repos/{owner}/{repo}/releases/{id}/assets"
	RouteGetAsset      = "GET /repos/{owner}/{repo}/releases/assets/{id}"
	RouteDeleteAsset   = "DELETE /repos/{owner}/{repo}/releases/assets/{id}"
	RouteUploadAsset   = "POST /uploads/repos/{owner}/{repo}/releases/{id}/assets"
)

// Release is a release as the server stores it.
type Release struct {
	ID              int64
	Repo            string // owner/name
	TagName         string
	TargetCommitish string
	Name            string
	Body            string
	Draft           bool
	Prerelease      bool
	Immutable       bool
	// MakeLatest is the last make_latest value a create or update sent
	// ("true", "false", "legacy"; "" when never sent).
	MakeLatest  string
	CreatedAt   time.Time
	PublishedAt time.Time // zero while a draft
	Assets      []Asset
}

// Asset returns the release's asset called name.
func (r Release) Asset(name string) (Asset, bool) {
	for _, a := range r.Assets {
		if a.Name == name {
			return a, true
		}
	}
	return Asset{}, false
}

// AssetNames lists the release's asset names in upload order.
func (r Release) AssetNames() []string {
	names := make([]string, 0, len(r.Assets))
	for _, a := range r.Assets {
		names = append(names, a.Name)
	}
	return names
}

// Asset is an uploaded file.
type Asset struct {
	ID          int64
	Name        string
	Label       string
	ContentType string
	Data        []byte
}

// Call is one request the server answered.
type Call struct {
	Route  string // one of the Route constants; "" for an unknown path
	Method string
	Path   string
	Query  string
	Status int
	// Body is the JSON the client sent (empty for uploads, whose bytes are
	// in the stored asset).
	Body string
}

func (c Call) String() string { return fmt.Sprintf("%s %s -> %d", c.Method, c.Path, c.Status) }

// Fault is an answer given instead of handling a request.
type Fault struct {
	// Status is the HTTP status, e.g. 502, or 403 with SecondaryRateLimit.
	Status int
	// RetryAfter is the Retry-After header (seconds), if any.
	RetryAfter string
	// SecondaryRateLimit makes the body GitHub's secondary rate limit
	// message, which go-github reports as an AbuseRateLimitError.
	SecondaryRateLimit bool
	// Landed handles the request before answering with the fault: the
	// change is made but the client never hears of it, as when a
	// connection breaks after GitHub acted.
	Landed bool
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the REST API root to give a client (as GITHUB_API_URL).
	URL string
	// Token is the accepted token (the Token constant).
	Token string

	errorf func(format string, args ...any) // reports a client's misbehaviour
	srv    *httptest.Server

	mu        sync.Mutex
	nextID    int64
	releases  []*Release
	calls     []Call
	faults    map[string][]Fault
	uploadErr map[string]int // asset name -> uploads still to fail (<0: all)
	notes     string
	now       func() time.Time
}

// Start starts a server and stops it when the test ends; a token leaking
// into a request body or query fails the test.
func Start(t testing.TB) *Server {
	s := New(t.Errorf)
	t.Cleanup(s.Close)
	return s
}

// New starts a server outside a test (the demo): errorf reports a token
// leaking into a request body or query. Close stops it.
func New(errorf func(format string, args ...any)) *Server {
	s := &Server{
		Token:     Token,
		errorf:    errorf,
		nextID:    190000000,
		faults:    map[string][]Fault{},
		uploadErr: map[string]int{},
		now:       func() time.Time { return time.Now().UTC().Truncate(time.Second) },
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Releases returns copies of the releases of repo (owner/name), newest
// first, drafts included.
func (s *Server) Releases(repo string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Release
	for i := len(s.releases) - 1; i >= 0; i-- {
		if r := s.releases[i]; r.Repo == repo {
			out = append(out, copyRelease(r))
		}
	}
	return out
}

// ReleasesForTag returns the releases of repo whose tag is tag, drafts
// included; a well-behaved client leaves exactly one.
func (s *Server) ReleasesForTag(repo, tag string) []Release {
	var out []Release
	for _, r := range s.Releases(repo) {
		if r.TagName == tag {
			out = append(out, r)
		}
	}
	return out
}

// AddRelease stores a release as if created earlier (an ID is assigned,
// and asset IDs) and returns it.
func (s *Server) AddRelease(r Release) Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ID = s.id()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if !r.Draft && r.PublishedAt.IsZero() {
		r.PublishedAt = r.CreatedAt
	}
	r.Assets = slices.Clone(r.Assets)
	for i := range r.Assets {
		r.Assets[i].ID = s.id()
	}
	cp := copyRelease(&r)
	s.releases = append(s.releases, &cp)
	return copyRelease(&cp)
}

// SetGeneratedNotes sets the body POST generate-notes answers with; by
// default it is a short "What's Changed" list naming the tag.
func (s *Server) SetGeneratedNotes(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = body
}

// FailNext queues faults for requests to route (a Route constant): the
// next requests get them in order, then the route works again.
func (s *Server) FailNext(route string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], faults...)
}

// FailUpload answers uploads of the asset called name with 500 the next
// times times; a negative times fails every upload of it.
func (s *Server) FailUpload(name string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploadErr[name] = times
}

// Calls returns every request answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Writes returns the requests that changed something (anything but GET and
// generate-notes, which only reads), in order.
func (s *Server) Writes() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method != http.MethodGet && c.Route != RouteGenerateNotes {
			out = append(out, c)
		}
	}
	return out
}

func copyRelease(r *Release) Release {
	c := *r
	c.Assets = make([]Asset, len(r.Assets))
	for i, a := range r.Assets {
		a.Data = bytes.Clone(a.Data)
		c.Assets[i] = a
	}
	return c
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// route matches a request to one of the Route constants. ServeMux patterns
// cannot hold both /releases/tags/{tag...} and /releases/{id}/assets (the
// path /releases/tags/assets matches both), so matching is by hand.
func route(method, path string) (name string, vars map[string]string) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	upload := false
	if len(seg) > 0 && seg[0] == "uploads" {
		upload, seg = true, seg[1:]
	}
	if len(seg) < 4 || seg[0] != "repos" || seg[3] != "releases" {
		return "", nil
	}
	vars = map[string]string{"owner": seg[1], "repo": seg[2]}
	rest := seg[4:]
	switch {
	case upload:
		if method == http.MethodPost && len(rest) == 2 && rest[1] == "assets" {
			vars["id"] = rest[0]
			return RouteUploadAsset, vars
		}
		return "", nil
	case len(rest) == 0:
		switch method {
		case http.MethodGet:
			return RouteListReleases, vars
		case http.MethodPost:
			return RouteCreateRelease, vars
		}
	case len(rest) == 1 && rest[0] == "generate-notes" && method == http.MethodPost:
		return RouteGenerateNotes, vars
	case len(rest) >= 2 && rest[0] == "tags" && method == http.MethodGet:
		vars["tag"] = strings.Join(rest[1:], "/")
		return RouteGetByTag, vars
	case len(rest) == 2 && rest[0] == "assets":
		vars["id"] = rest[1]
		switch method {
		case http.MethodGet:
			return RouteGetAsset, vars
		case http.MethodDelete:
			return RouteDeleteAsset, vars
		}
	case len(rest) == 1:
		vars["id"] = rest[0]
		switch method {
		case http.MethodGet:
			return RouteGetRelease, vars
		case http.MethodPatch:
			return RouteUpdateRelease, vars
		case http.MethodDelete:
			return RouteDeleteRelease, vars
		}
	case len(rest) == 2 && rest[1] == "assets" && method == http.MethodGet:
		vars["id"] = rest[0]
		return RouteListAssets, vars
	}
	return "", nil
}

// recorder keeps the status a handler wrote, for Calls.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	name, vars := route(r.Method, r.URL.Path)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	body, err := io.ReadAll(r.Body)
	defer func() {
		c := Call{Route: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status}
		if name != RouteUploadAsset {
			c.Body = string(body)
		}
		s.mu.Lock()
		s.calls = append(s.calls, c)
		s.mu.Unlock()
	}()
	w = rec

	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems reading the request body", nil)
		return
	}
	// Nothing a client sends may carry the token except the header.
	if strings.Contains(string(body), s.Token) || strings.Contains(r.URL.RawQuery, s.Token) {
		s.errorf("%s %s: the token appears in the request body or query", r.Method, r.URL.Path)
	}
	auth := r.Header.Get("Authorization")
	if auth != "Bearer "+s.Token && auth != "token "+s.Token {
		writeError(w, http.StatusUnauthorized, "Bad credentials", nil)
		return
	}
	if name == "" {
		writeError(w, http.StatusNotFound, "Not Found", nil)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.faults[name]; len(q) > 0 {
		s.faults[name] = q[1:]
		if q[0].Landed {
			s.handle(httptest.NewRecorder(), r, name, vars, body)
		}
		writeFault(w, q[0])
		return
	}
	s.handle(w, r, name, vars, body)
}

// handle answers a request to a known route; s.mu is held.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, name string, vars map[string]string, body []byte) {
	repo := vars["owner"] + "/" + vars["repo"]
	switch name {
	case RouteListReleases:
		s.listReleases(w, r, repo)
	case RouteCreateRelease:
		s.createRelease(w, r, repo, body)
	case RouteGenerateNotes:
		s.generateNotes(w, repo, body)
	case RouteGetByTag:
		s.getByTag(w, r, repo, vars["tag"])
	case RouteGetRelease, RouteUpdateRelease, RouteDeleteRelease, RouteListAssets:
		rel := s.findID(repo, vars["id"])
		if rel == nil {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		switch name {
		case RouteGetRelease:
			writeJSON(w, http.StatusOK, s.releaseJSON(r, rel))
		case RouteUpdateRelease:
			s.updateRelease(w, r, rel, body)
		case RouteDeleteRelease:
			s.releases = slices.DeleteFunc(s.releases, func(x *Release) bool { return x == rel })
			w.WriteHeader(http.StatusNoContent)
		case RouteListAssets:
			items := make([]any, 0, len(rel.Assets))
			for _, a := range rel.Assets {
				items = append(items, s.assetJSON(r, rel, a))
			}
			writePage(w, r, items)
		}
	case RouteGetAsset, RouteDeleteAsset:
		rel, i := s.findAsset(repo, vars["id"])
		if rel == nil {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		if name == RouteGetAsset {
			writeJSON(w, http.StatusOK, s.assetJSON(r, rel, rel.Assets[i]))
			return
		}
		if rel.Immutable && !rel.Draft {
			writeError(w, http.StatusUnprocessableEntity, "Cannot delete asset from an immutable release.", nil)
			return
		}
		rel.Assets = slices.Delete(rel.Assets, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	case RouteUploadAsset:
		s.upload(w, r, repo, vars["id"], body)
	}
}

func (s *Server) findID(repo, id string) *Release {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	for _, rel := range s.releases {
		if rel.Repo == repo && rel.ID == n {
			return rel
		}
	}
	return nil
}

func (s *Server) findAsset(repo, id string) (*Release, int) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, 0
	}
	for _, rel := range s.releases {
		if rel.Repo != repo {
			continue
		}
		for i, a := range rel.Assets {
			if a.ID == n {
				return rel, i
			}
		}
	}
	return nil, 0
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, repo string) {
	var items []any
	for i := len(s.releases) - 1; i >= 0; i-- {
		if rel := s.releases[i]; rel.Repo == repo {
			items = append(items, s.releaseJSON(r, rel))
		}
	}
	writePage(w, r, items)
}

// getByTag finds the published release of tag: GitHub does not return
// drafts from this endpoint.
func (s *Server) getByTag(w http.ResponseWriter, r *http.Request, repo, tag string) {
	for _, rel := range s.releases {
		if rel.Repo == repo && rel.TagName == tag && !rel.Draft {
			writeJSON(w, http.StatusOK, s.releaseJSON(r, rel))
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not Found", nil)
}

// releaseRequest is the body of create and update.
type releaseRequest struct {
	TagName              *string `json:"tag_name"`
	TargetCommitish      *string `json:"target_commitish"`
	Name                 *string `json:"name"`
	Body                 *string `json:"body"`
	Draft                *bool   `json:"draft"`
	Prerelease           *bool   `json:"prerelease"`
	MakeLatest           *string `json:"make_latest"`
	GenerateReleaseNotes *bool   `json:"generate_release_notes"`
}

func (s *Server) decodeRelease(w http.ResponseWriter, body []byte) (releaseRequest, bool) {
	var req releaseRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", nil)
		return req, false
	}
	if req.MakeLatest != nil && !slices.Contains([]string{"true", "false", "legacy"}, *req.MakeLatest) {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"Release", "make_latest", "invalid"}})
		return req, false
	}
	return req, true
}

func (s *Server) publishedWithTag(repo, tag string, except *Release) bool {
	for _, rel := range s.releases {
		if rel != except && rel.Repo == repo && rel.TagName == tag && !rel.Draft {
			return true
		}
	}
	return false
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, repo string, body []byte) {
	req, ok := s.decodeRelease(w, body)
	if !ok {
		return
	}
	if req.TagName == nil || *req.TagName == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"Release", "tag_name", "missing_field"}})
		return
	}
	draft := req.Draft != nil && *req.Draft
	if !draft && s.publishedWithTag(repo, *req.TagName, nil) {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"Release", "tag_name", "already_exists"}})
		return
	}
	rel := &Release{ID: s.id(), Repo: repo, TagName: *req.TagName, TargetCommitish: "main", CreatedAt: s.now()}
	if req.TargetCommitish != nil {
		rel.TargetCommitish = *req.TargetCommitish
	}
	rel.Name = deref(req.Name)
	rel.Body = deref(req.Body)
	rel.Draft = draft
	rel.Prerelease = req.Prerelease != nil && *req.Prerelease
	rel.MakeLatest = deref(req.MakeLatest)
	if req.GenerateReleaseNotes != nil && *req.GenerateReleaseNotes {
		rel.Body = strings.TrimSpace(rel.Body + "\n\n" + s.generated(repo, rel.TagName))
	}
	if !draft {
		rel.PublishedAt = rel.CreatedAt
	}
	s.releases = append(s.releases, rel)
	writeJSON(w, http.StatusCreated, s.releaseJSON(r, rel))
}

func (s *Server) updateRelease(w http.ResponseWriter, r *http.Request, rel *Release, body []byte) {
	req, ok := s.decodeRelease(w, body)
	if !ok {
		return
	}
	if rel.Immutable && !rel.Draft && req.TagName != nil && *req.TagName != rel.TagName {
		writeError(w, http.StatusUnprocessableEntity, "Cannot change the tag of an immutable release.", nil)
		return
	}
	tag := rel.TagName
	if req.TagName != nil {
		tag = *req.TagName
	}
	draft := rel.Draft
	if req.Draft != nil {
		draft = *req.Draft
	}
	if !draft && s.publishedWithTag(rel.Repo, tag, rel) {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"Release", "tag_name", "already_exists"}})
		return
	}
	rel.TagName = tag
	if req.TargetCommitish != nil {
		rel.TargetCommitish = *req.TargetCommitish
	}
	if req.Name != nil {
		rel.Name = *req.Name
	}
	if req.Body != nil {
		rel.Body = *req.Body
	}
	if req.Prerelease != nil {
		rel.Prerelease = *req.Prerelease
	}
	if req.MakeLatest != nil {
		rel.MakeLatest = *req.MakeLatest
	}
	if rel.Draft && !draft {
		rel.PublishedAt = s.now()
	}
	if !rel.Draft && draft {
		rel.PublishedAt = time.Time{}
	}
	rel.Draft = draft
	writeJSON(w, http.StatusOK, s.releaseJSON(r, rel))
}

func (s *Server) generated(repo, tag string) string {
	if s.notes != "" {
		return s.notes
	}
	web := s.URL + "/" + repo
	return fmt.Sprintf("## What's Changed\n* Add health endpoint by @octocat in %s/pull/42\n* Fix cold start by @hubot in %s/pull/43\n\n**Full Changelog**: %s/commits/%s", web, web, web, tag)
}

func (s *Server) generateNotes(w http.ResponseWriter, repo string, body []byte) {
	var req struct {
		TagName string `json:"tag_name"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.TagName == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"Release", "tag_name", "missing_field"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": req.TagName, "body": s.generated(repo, req.TagName)})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, repo, id string, body []byte) {
	rel := s.findID(repo, id)
	if rel == nil {
		writeError(w, http.StatusNotFound, "Not Found", nil)
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"ReleaseAsset", "name", "missing_field"}})
		return
	}
	if n, ok := s.uploadErr[name]; ok && n != 0 {
		if n > 0 {
			s.uploadErr[name] = n - 1
		}
		writeFault(w, Fault{Status: http.StatusInternalServerError})
		return
	}
	if r.ContentLength != int64(len(body)) {
		writeError(w, http.StatusBadRequest, "Bad Content-Length", nil)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"ReleaseAsset", "content_type", "missing_field"}})
		return
	}
	if rel.Immutable && !rel.Draft {
		writeError(w, http.StatusUnprocessableEntity, "Cannot upload assets to an immutable release.", nil)
		return
	}
	if _, ok := rel.Asset(name); ok {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []fieldError{{"ReleaseAsset", "name", "already_exists"}})
		return
	}
	a := Asset{ID: s.id(), Name: name, Label: r.URL.Query().Get("label"), ContentType: ct, Data: bytes.Clone(body)}
	rel.Assets = append(rel.Assets, a)
	writeJSON(w, http.StatusCreated, s.assetJSON(r, rel, a))
}

func (s *Server) releaseJSON(r *http.Request, rel *Release) map[string]any {
	api := s.URL + "/repos/" + rel.Repo + "/releases/" + strconv.FormatInt(rel.ID, 10)
	html := s.URL + "/" + rel.Repo + "/releases/tag/" + rel.TagName
	if rel.Draft {
		// GitHub gives a draft a placeholder tag in its URL until it is
		// published, so a draft's html_url is not the final one.
		html = fmt.Sprintf("%s/%s/releases/tag/untagged-%x", s.URL, rel.Repo, rel.ID)
	}
	assets := make([]any, 0, len(rel.Assets))
	for _, a := range rel.Assets {
		assets = append(assets, s.assetJSON(r, rel, a))
	}
	var published any
	if !rel.PublishedAt.IsZero() {
		published = rel.PublishedAt.Format(time.RFC3339)
	}
	return map[string]any{
		"url":              api,
		"html_url":         html,
		"assets_url":       api + "/assets",
		"upload_url":       s.URL + "/uploads/repos/" + rel.Repo + "/releases/" + strconv.FormatInt(rel.ID, 10) + "/assets{?name,label}",
		"tarball_url":      s.URL + "/repos/" + rel.Repo + "/tarball/" + rel.TagName,
		"zipball_url":      s.URL + "/repos/" + rel.Repo + "/zipball/" + rel.TagName,
		"id":               rel.ID,
		"node_id":          fmt.Sprintf("RE_kwDO%08d", rel.ID%100000000),
		"tag_name":         rel.TagName,
		"target_commitish": rel.TargetCommitish,
		"name":             rel.Name,
		"body":             rel.Body,
		"draft":            rel.Draft,
		"prerelease":       rel.Prerelease,
		"immutable":        rel.Immutable,
		"created_at":       rel.CreatedAt.Format(time.RFC3339),
		"published_at":     published,
		"author":           author(s.URL),
		"assets":           assets,
	}
}

func (s *Server) assetJSON(r *http.Request, rel *Release, a Asset) map[string]any {
	sum := sha256.Sum256(a.Data)
	return map[string]any{
		"url":                  s.URL + "/repos/" + rel.Repo + "/releases/assets/" + strconv.FormatInt(a.ID, 10),
		"browser_download_url": s.URL + "/" + rel.Repo + "/releases/download/" + rel.TagName + "/" + url.PathEscape(a.Name),
		"id":                   a.ID,
		"node_id":              fmt.Sprintf("RA_kwDO%08d", a.ID%100000000),
		"name":                 a.Name,
		"label":                a.Label,
		"state":                "uploaded",
		"content_type":         a.ContentType,
		"size":                 len(a.Data),
		"digest":               "sha256:" + hex.EncodeToString(sum[:]),
		"download_count":       0,
		"created_at":           rel.CreatedAt.Format(time.RFC3339),
		"updated_at":           rel.CreatedAt.Format(time.RFC3339),
		"uploader":             author(s.URL),
	}
}

func author(base string) map[string]any {
	return map[string]any{
		"login":    "github-actions[bot]",
		"id":       41898282,
		"node_id":  "MDM6Qm90NDE4OTgyODI=",
		"type":     "Bot",
		"html_url": base + "/apps/github-actions",
	}
}

// writePage answers a list request one page at a time (per_page, default
// 30, at most 100), with a Link header to the next page as GitHub does.
func writePage(w http.ResponseWriter, r *http.Request, items []any) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	start := min((page-1)*per, len(items))
	end := min(start+per, len(items))
	if end < len(items) {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		next := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
	}
	out := items[start:end]
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, out)
}

type fieldError struct {
	Resource, Field, Code string
}

func writeError(w http.ResponseWriter, status int, message string, errs []fieldError) {
	body := map[string]any{
		"message":           message,
		"documentation_url": "https://docs.github.com/rest/releases/releases",
		"status":            strconv.Itoa(status),
	}
	if len(errs) > 0 {
		var list []map[string]string
		for _, e := range errs {
			list = append(list, map[string]string{"resource": e.Resource, "field": e.Field, "code": e.Code})
		}
		body["errors"] = list
	}
	writeJSON(w, status, body)
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.SecondaryRateLimit {
		writeJSON(w, f.Status, map[string]string{
			"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
		return
	}
	if f.Status >= 500 {
		writeJSON(w, f.Status, map[string]string{"message": "Server Error"})
		return
	}
	writeError(w, f.Status, http.StatusText(f.Status), nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.WriteHeader(status)
	w.Write(b)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
