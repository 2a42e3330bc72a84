package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// lock is one deploy's hold on an environment: a coordination.k8s.io Lease
// in the namespace, renewed while the deploy runs. A runner that dies stops
// renewing, and the next deploy takes the lease over once it expires.
type lock struct {
	c        *cluster
	ns, name string
	holder   string
	duration time.Duration
	stop     chan struct{}
	done     chan struct{}
	// abandoned is the GitHub deployment (AnnotationGitHubDeployment) of
	// a holder whose lease this one took over after it expired: a run
	// that died without reporting how its deploy ended.
	abandoned, abandonedBy string
}

// AnnotationGitHubDeployment on the Lease names the GitHub deployment of
// the run holding it (owner/repo/id), so that a run taking the Lease over
// from a holder that died can close that deployment. Not a gantry.dev/
// annotation: it is no part of a rollout's recorded state.
const AnnotationGitHubDeployment = "deploy.gantry.dev/github-deployment"

// LeaseName is the Lease that serialises deploys to an environment.
func LeaseName(environment string) string { return "gantry-deploy-" + environment }

// acquire takes the environment's lease, noting deployment (the run's
// GitHub deployment, owner/repo/id, or "") on it. With wait it retries
// until ctx ends; without, a lease held by someone else is an immediate
// error.
func (c *cluster) acquire(ctx context.Context, log ghaction.Logger, ns, environment, holder, deployment string, duration time.Duration, wait bool) (*lock, error) {
	l := &lock{c: c, ns: ns, name: LeaseName(environment), holder: holder, duration: duration}
	secs := int32(duration.Seconds())
	announced := false
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := c.typed.CoordinationV1().Leases(ns).Get(ctx, l.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			var ann map[string]string
			if deployment != "" {
				ann = map[string]string{AnnotationGitHubDeployment: deployment}
			}
			_, err = c.typed.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: map[string]string{"app.kubernetes.io/managed-by": "gantry"}, Annotations: ann},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
			}, metav1.CreateOptions{FieldManager: FieldManager})
			if err == nil {
				l.keep()
				return l, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("taking lease %s/%s: %w", ns, l.name, err)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("reading lease %s/%s: %w", ns, l.name, err)
		}
		other, expired := holderOf(lease), leaseExpired(lease, now.Time)
		if other == "" || other == holder || expired {
			l.abandoned, l.abandonedBy = "", ""
			if expired && other != "" && other != holder {
				log.Warningf("taking over the lease of %s for %s: its holder %q stopped renewing it at %s (a runner that died?)", environment, ns, other, lease.Spec.RenewTime.Format(time.RFC3339))
				l.abandoned, l.abandonedBy = lease.Annotations[AnnotationGitHubDeployment], other
			}
			if lease.Annotations == nil {
				lease.Annotations = map[string]string{}
			}
			delete(lease.Annotations, AnnotationGitHubDeployment)
			if deployment != "" {
				lease.Annotations[AnnotationGitHubDeployment] = deployment
			}
			lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &holder, &secs
			lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
			// The update carries the resourceVersion we read: if another
			// runner took the lease meanwhile, it conflicts and we look again.
			if _, err := c.typed.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager}); err == nil {
				l.keep()
				return l, nil
			} else if !apierrors.IsConflict(err) {
				return nil, fmt.Errorf("taking lease %s/%s: %w", ns, l.name, err)
			}
			continue
		}
		since := ""
		if lease.Spec.AcquireTime != nil {
			since = " since " + lease.Spec.AcquireTime.Format(time.RFC3339)
		}
		if !wait {
			return nil, fmt.Errorf("environment %s is being deployed by %s%s (lease %s/%s): wait for it, or set lock: wait", environment, other, since, ns, l.name)
		}
		if !announced {
			log.Infof("waiting: environment %s is being deployed by %s%s", environment, other, since)
			announced = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("environment %s is still being deployed by %s%s: gave up waiting: %w", environment, other, since, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func leaseExpired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// keep renews the lease at a third of its duration until release.
func (l *lock) keep() {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.duration / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), l.duration/3)
				lease, err := l.c.typed.CoordinationV1().Leases(l.ns).Get(ctx, l.name, metav1.GetOptions{})
				if err == nil && holderOf(lease) == l.holder {
					now := metav1.NewMicroTime(time.Now())
					lease.Spec.RenewTime = &now
					l.c.typed.CoordinationV1().Leases(l.ns).Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
				}
				cancel()
			}
		}
	}()
}

// release gives the lease up (if it is still ours). A Lease that carries
// a progressive rollout's state (gantry.dev/ annotations) is kept, with
// its holder cleared: the next run reads the state from it to resume or
// abort, or to know what was promoted.
func (l *lock) release() {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		lease, err := l.c.typed.CoordinationV1().Leases(l.ns).Get(ctx, l.name, metav1.GetOptions{})
		if err != nil || holderOf(lease) != l.holder {
			return
		}
		rv := lease.ResourceVersion
		if !hasState(lease) {
			err = l.c.typed.CoordinationV1().Leases(l.ns).Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		} else {
			lease.Spec.HolderIdentity, lease.Spec.AcquireTime, lease.Spec.RenewTime = nil, nil, nil
			delete(lease.Annotations, AnnotationGitHubDeployment)
			_, err = l.c.typed.CoordinationV1().Leases(l.ns).Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
		}
		// A conflict is a write since the read (a renewal or the state):
		// read again.
		if !apierrors.IsConflict(err) {
			return
		}
	}
}

// hasState reports whether a Lease carries progressive rollout state.
func hasState(l *coordinationv1.Lease) bool {
	for k := range l.Annotations {
		if strings.HasPrefix(k, "gantry.dev/") {
			return true
		}
	}
	return false
}
