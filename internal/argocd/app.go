// Package argocd follows an Argo CD Application from outside the cluster:
// it reads the Application, asks Argo CD to refresh it (re-read Git now
// rather than at the next poll), starts a sync, and waits until the
// Application runs a given Git commit and is healthy, reporting what is
// not. It talks to Argo CD in one of two ways, with the same semantics:
//
//   - the Argo CD API server (REST, a bearer token): what `argocd app get`,
//     `argocd app sync` and `argocd app wait` use;
//   - the Application resource through the Kubernetes API (a kubeconfig),
//     what `argocd --core` uses: the controller reads the refresh
//     annotation and the `operation` field as it reads the API server's
//     writes.
//
// Gantry links no Argo CD module (Argo CD v3 needs a newer Go): the
// Application is read as JSON into the few fields used here.
package argocd

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Application is the part of an argoproj.io/v1alpha1 Application that
// Gantry reads.
type Application struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Project    string   `json:"project"`
		Source     *Source  `json:"source,omitempty"`
		Sources    []Source `json:"sources,omitempty"`
		SyncPolicy *struct {
			Automated *struct {
				Prune    bool  `json:"prune,omitempty"`
				SelfHeal bool  `json:"selfHeal,omitempty"`
				Enabled  *bool `json:"enabled,omitempty"`
			} `json:"automated,omitempty"`
		} `json:"syncPolicy,omitempty"`
		Destination struct {
			Server    string `json:"server,omitempty"`
			Name      string `json:"name,omitempty"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"destination"`
	} `json:"spec"`
	Operation *Operation `json:"operation,omitempty"`
	Status    Status     `json:"status"`
}

// Source is where an Application's manifests come from.
type Source struct {
	RepoURL        string `json:"repoURL"`
	Path           string `json:"path,omitempty"`
	TargetRevision string `json:"targetRevision,omitempty"`
	Chart          string `json:"chart,omitempty"`
}

// Operation is a requested operation (a sync).
type Operation struct {
	Sync *struct {
		Revision string `json:"revision,omitempty"`
		Prune    bool   `json:"prune,omitempty"`
	} `json:"sync,omitempty"`
	InitiatedBy struct {
		Username  string `json:"username,omitempty"`
		Automated bool   `json:"automated,omitempty"`
	} `json:"initiatedBy"`
}

// Status is the Application's status as the controller writes it.
type Status struct {
	Sync struct {
		Status    string   `json:"status"`
		Revision  string   `json:"revision,omitempty"`
		Revisions []string `json:"revisions,omitempty"`
	} `json:"sync"`
	Health struct {
		Status  string `json:"status"`
		Message string `json:"message,omitempty"`
	} `json:"health"`
	Conditions     []Condition     `json:"conditions,omitempty"`
	Resources      []Resource      `json:"resources,omitempty"`
	History        []HistoryEntry  `json:"history,omitempty"`
	OperationState *OperationState `json:"operationState,omitempty"`
	Summary        struct {
		Images []string `json:"images,omitempty"`
	} `json:"summary"`
	ReconciledAt string `json:"reconciledAt,omitempty"`
}

// Condition is an Application condition (ComparisonError, SyncError …).
type Condition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Resource is one object the Application manages, with its sync status
// and health.
type Resource struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status,omitempty"`
	Health    *struct {
		Status  string `json:"status,omitempty"`
		Message string `json:"message,omitempty"`
	} `json:"health,omitempty"`
}

// HistoryEntry is one deployed revision (what `argocd app history` lists).
type HistoryEntry struct {
	ID         int64  `json:"id"`
	Revision   string `json:"revision,omitempty"`
	DeployedAt string `json:"deployedAt,omitempty"`
	Source     Source `json:"source"`
}

// OperationState is the last (or running) operation's state.
type OperationState struct {
	Phase      string `json:"phase"`
	Message    string `json:"message,omitempty"`
	StartedAt  string `json:"startedAt,omitempty"`
	FinishedAt string `json:"finishedAt,omitempty"`
	Operation  struct {
		Sync *struct {
			Revision string `json:"revision,omitempty"`
		} `json:"sync,omitempty"`
	} `json:"operation"`
	SyncResult *struct {
		Revision  string `json:"revision,omitempty"`
		Resources []struct {
			Kind      string `json:"kind"`
			Namespace string `json:"namespace,omitempty"`
			Name      string `json:"name"`
			Status    string `json:"status,omitempty"`
			Message   string `json:"message,omitempty"`
			HookPhase string `json:"hookPhase,omitempty"`
		} `json:"resources,omitempty"`
	} `json:"syncResult,omitempty"`
}

// Argo CD's words for sync status, health and operation phases.
const (
	Synced      = "Synced"
	OutOfSync   = "OutOfSync"
	Healthy     = "Healthy"
	Degraded    = "Degraded"
	Progressing = "Progressing"
	Suspended   = "Suspended"
	Missing     = "Missing"

	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
	PhaseError     = "Error"
)

// AutoSync reports whether the Application syncs by itself
// (spec.syncPolicy.automated, not disabled).
func (a *Application) AutoSync() bool {
	p := a.Spec.SyncPolicy
	if p == nil || p.Automated == nil {
		return false
	}
	return p.Automated.Enabled == nil || *p.Automated.Enabled
}

// PrimarySource is the Application's one source, or the first of several.
func (a *Application) PrimarySource() (Source, bool) {
	if a.Spec.Source != nil {
		return *a.Spec.Source, true
	}
	if len(a.Spec.Sources) > 0 {
		return a.Spec.Sources[0], true
	}
	return Source{}, false
}

// Revision is the Git revision the Application compares against (its
// target revision, resolved), the first of several sources'.
func (s *Status) Revision() string {
	if s.Sync.Revision != "" {
		return s.Sync.Revision
	}
	if len(s.Sync.Revisions) > 0 {
		return s.Sync.Revisions[0]
	}
	return ""
}

// Runs reports whether the Application has reconciled commit (or the live
// objects run image, which also covers a later commit on top of ours that
// kept the digest), is Synced and Healthy, with no operation running.
func (a *Application) Runs(commit, image string) bool {
	s := &a.Status
	if s.Sync.Status != Synced || s.Health.Status != Healthy {
		return false
	}
	if s.OperationState != nil && s.OperationState.Phase == PhaseRunning {
		return false
	}
	if commit != "" && s.Revision() == commit {
		return true
	}
	return image != "" && slices.Contains(s.Summary.Images, image) && s.Revision() != ""
}

// atCommit reports whether the Application compares against commit, or
// its live objects run image.
func (a *Application) atCommit(commit, image string) bool {
	return a.Status.Revision() == commit || (image != "" && slices.Contains(a.Status.Summary.Images, image))
}

// SyncFailed returns why the last sync of commit failed (its phase Failed
// or Error), with the resources that did not sync; nil otherwise.
func (a *Application) SyncFailed(commit, image string) error {
	op := a.Status.OperationState
	if op == nil || (op.Phase != PhaseFailed && op.Phase != PhaseError) {
		return nil
	}
	rev := ""
	if op.SyncResult != nil {
		rev = op.SyncResult.Revision
	}
	if rev == "" && op.Operation.Sync != nil {
		rev = op.Operation.Sync.Revision
	}
	if rev == commit || (rev == "" && a.atCommit(commit, image)) {
		return fmt.Errorf("sync of %s %s: %s%s", short(commit), strings.ToLower(op.Phase), oneLine(op.Message), a.failedResources())
	}
	return nil
}

// DegradedAt returns, when the Application is Degraded at commit with no
// operation running, what is unhealthy; nil otherwise. Right after a sync
// Argo CD may still show the health of what ran before, so a caller
// counts Degraded as final only when it lasts (Wait's DegradedFor).
func (a *Application) DegradedAt(commit, image string) error {
	s := &a.Status
	// Synced: the live objects are the commit's. OutOfSync or Unknown (a
	// comparison that failed) leaves the health of what ran before.
	if s.Health.Status != Degraded || s.Sync.Status != Synced || !a.atCommit(commit, image) {
		return nil
	}
	if s.OperationState != nil && s.OperationState.Phase == PhaseRunning {
		return nil
	}
	return fmt.Errorf("application %s is Degraded at %s%s", a.Metadata.Name, short(commit), a.unhealthy())
}

// failedResources lists the last sync's resources that did not sync.
func (a *Application) failedResources() string {
	op := a.Status.OperationState
	if op == nil || op.SyncResult == nil {
		return ""
	}
	var parts []string
	for _, r := range op.SyncResult.Resources {
		if r.Status != "" && r.Status != "Synced" && r.Status != "Pruned" {
			parts = append(parts, fmt.Sprintf("%s/%s %s: %s", r.Kind, r.Name, r.Status, oneLine(r.Message)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// unhealthy lists the resources that are not Healthy, with their messages.
func (a *Application) unhealthy() string {
	parts := a.UnhealthyResources()
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// UnhealthyResources is each managed resource whose health is known and
// not Healthy, as "Kind namespace/name: Health (message)".
func (a *Application) UnhealthyResources() []string {
	return unhealthy(a.Status.Resources)
}

func unhealthy(rs []Resource) []string {
	var out []string
	for _, r := range rs {
		if r.Health == nil || r.Health.Status == "" || r.Health.Status == Healthy {
			continue
		}
		s := fmt.Sprintf("%s %s: %s", r.Kind, qualified(r.Namespace, r.Name), r.Health.Status)
		if r.Health.Message != "" {
			s += " (" + oneLine(r.Health.Message) + ")"
		}
		out = append(out, s)
	}
	return out
}

// Describe is the Application's state in one line, for logs.
func (a *Application) Describe() string {
	s := &a.Status
	parts := []string{fmt.Sprintf("sync %s at %s", orUnknown(s.Sync.Status), orUnknown(short(s.Revision()))), "health " + orUnknown(s.Health.Status)}
	if op := s.OperationState; op != nil {
		parts = append(parts, "operation "+op.Phase)
	}
	for _, c := range s.Conditions {
		parts = append(parts, fmt.Sprintf("%s: %s", c.Type, oneLine(c.Message)))
	}
	return strings.Join(parts, ", ")
}

// Entry is the history entry with the given id.
func (a *Application) Entry(id int64) (HistoryEntry, bool) {
	for _, h := range a.Status.History {
		if h.ID == id {
			return h, true
		}
	}
	return HistoryEntry{}, false
}

// DeployedAt parses a history entry's time; zero when absent.
func (h HistoryEntry) Time() time.Time {
	t, _ := time.Parse(time.RFC3339, h.DeployedAt)
	return t
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:299] + "…"
	}
	return s
}
