// Package argorollouts drives an existing Argo Rollouts Rollout from outside
// the cluster, the way the `kubectl argo rollouts` plugin does: it sets the
// pod template's image (by digest only), reads the Rollout's status, waits
// for a state with a bounded time, and promotes, aborts, retries, pauses and
// resumes it. The Argo Rollouts controller in the cluster does the rollout
// itself; everything here is a read or a small patch of the Rollout object,
// so Gantry needs no Argo Rollouts Go module, only a dynamic client.
//
//	d := argorollouts.New(dyn, "prod", "web", argorollouts.WithLogger(log))
//	if err := d.Check(ctx); err != nil { ... }
//	if err := d.SetImage(ctx, "web", "ghcr.io/acme/web@sha256:…"); err != nil { ... }
//	st, err := d.Wait(ctx, argorollouts.PausedAt(1), 5*time.Minute)
//	err = d.Promote(ctx, false)
//	st, err = d.Wait(ctx, argorollouts.Healthy, 10*time.Minute)
//
// The library is silent unless given a logger (WithLogger).
package argorollouts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// FieldManager is the field manager of Gantry's writes to a Rollout, the
// same name the rest of the deploy stage applies under.
const FieldManager = "gantry"

// DefaultPollInterval is how often Wait reads the Rollout unless
// WithPollInterval says otherwise.
const DefaultPollInterval = 250 * time.Millisecond

// Group is Argo Rollouts' API group.
const Group = "argoproj.io"

// PodTemplateHashLabel marks a Rollout's ReplicaSets and pods with the hash
// of their pod template.
const PodTemplateHashLabel = "rollouts-pod-template-hash"

// RolloutGVR is the resource Argo Rollouts serves Rollouts as.
func RolloutGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: "v1alpha1", Resource: "rollouts"}
}

func replicaSetGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
}

// ErrCRDsMissing is wrapped by the error of every call on a cluster that
// does not serve Rollouts (Argo Rollouts is not installed).
var ErrCRDsMissing = errors.New("the cluster does not serve argoproj.io/v1alpha1 rollouts: the Argo Rollouts CRDs are not installed")

// ErrRolloutNotFound is wrapped by the error of every call on a Rollout
// that does not exist (while the CRDs do).
var ErrRolloutNotFound = errors.New("rollout not found")

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrRolloutNotFound }

// Driver drives one Rollout. It holds no state of the rollout between
// calls: every call reads the Rollout afresh, so a Driver made in a later
// job (after a runner died) continues where the cluster is.
type Driver struct {
	dyn       dynamic.Interface
	namespace string
	name      string
	log       ghaction.Logger
	poll      time.Duration
}

// Option configures a Driver.
type Option func(*Driver)

// WithLogger makes Wait log one line per change of phase, step or message.
func WithLogger(l ghaction.Logger) Option {
	return func(d *Driver) {
		if l != nil {
			d.log = l
		}
	}
}

// WithPollInterval sets how often Wait reads the Rollout (default
// DefaultPollInterval).
func WithPollInterval(p time.Duration) Option {
	return func(d *Driver) {
		if p > 0 {
			d.poll = p
		}
	}
}

// New returns a Driver for the Rollout name in namespace. It does not talk
// to the cluster; Check does.
func New(dyn dynamic.Interface, namespace, name string, opts ...Option) *Driver {
	d := &Driver{dyn: dyn, namespace: namespace, name: name, log: ghaction.Discard{}, poll: DefaultPollInterval}
	for _, o := range opts {
		o(d)
	}
	return d
}

// String names the Rollout as "Rollout namespace/name".
func (d *Driver) String() string { return "Rollout " + d.namespace + "/" + d.name }

func (d *Driver) rollouts() dynamic.ResourceInterface {
	return d.dyn.Resource(RolloutGVR()).Namespace(d.namespace)
}

// validate rejects a Driver that cannot name a Rollout, before any request.
func (d *Driver) validate() error {
	if d.dyn == nil {
		return errors.New("argorollouts: no Kubernetes client given to New")
	}
	if d.namespace == "" {
		return errors.New("argorollouts: the Rollout's namespace is empty: give the namespace the Rollout lives in")
	}
	if msgs := validation.IsDNS1123Label(d.namespace); len(msgs) > 0 {
		return fmt.Errorf("argorollouts: namespace %q is not a valid namespace name (%s)", d.namespace, strings.Join(msgs, "; "))
	}
	if d.name == "" {
		return errors.New("argorollouts: the Rollout's name is empty: give the name of an existing Rollout")
	}
	if msgs := validation.IsDNS1123Subdomain(d.name); len(msgs) > 0 {
		return fmt.Errorf("argorollouts: %q is not a valid Rollout name (%s)", d.name, strings.Join(msgs, "; "))
	}
	return nil
}

// Check verifies that the cluster serves Rollouts and that this Rollout
// exists, and says how to fix it when not: ErrCRDsMissing when Argo
// Rollouts is not installed, a "not found" error listing the Rollouts that
// do exist in the namespace otherwise.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.get(ctx)
	return err
}

// get reads the Rollout, turning a 404 into an error that says whether the
// CRD or the object is missing.
func (d *Driver) get(ctx context.Context) (*unstructured.Unstructured, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	obj, err := d.rollouts().Get(ctx, d.name, metav1.GetOptions{})
	if err == nil {
		return obj, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading %s: %w", d, err)
	}
	return nil, d.notFound(ctx)
}

// notFound tells a missing CRD from a missing Rollout: listing Rollouts
// also fails with 404 when the API server does not know the resource.
func (d *Driver) notFound(ctx context.Context) error {
	list, err := d.rollouts().List(ctx, metav1.ListOptions{Limit: 20})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w; install Argo Rollouts in the cluster (its CRDs and controller, https://argo-rollouts.readthedocs.io/en/stable/installation/) or deploy without the Argo Rollouts strategy", d, ErrCRDsMissing)
	}
	hint := ""
	if err == nil {
		var names []string
		for _, it := range list.Items {
			names = append(names, it.GetName())
		}
		slices.Sort(names)
		switch {
		case len(names) == 0:
			hint = fmt.Sprintf(" (there is no Rollout in namespace %s)", d.namespace)
		case list.GetContinue() != "":
			hint = fmt.Sprintf(" (Rollouts in namespace %s include %s)", d.namespace, strings.Join(names, ", "))
		default:
			hint = fmt.Sprintf(" (Rollouts in namespace %s: %s)", d.namespace, strings.Join(names, ", "))
		}
	}
	return &notFoundError{fmt.Sprintf("%s not found%s: create the Rollout first, or give the name and namespace of an existing one", d, hint)}
}
