package traffictest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const (
	// ServicePort is the port of the Services ExposeService creates, the
	// port an HTTPRoute's backendRef names; it forwards to BackendPort.
	ServicePort = 80
	// ServicePortName names that port in the Service and its EndpointSlice.
	ServicePortName = "http"
	// managedBy marks the EndpointSlices written here, so the cluster's
	// EndpointSlice controllers leave them alone.
	managedBy = "traffictest.gantry.dev"
)

// ExposeService creates a Service without a selector in ns, port
// ServicePort (named ServicePortName) to BackendPort, and an EndpointSlice
// listing the backends as ready endpoints: what the EndpointSlice
// controller would write for pods at those addresses. kwok's pods have no
// reachable address, so this is how a Gateway reaches real servers on the
// test control plane. Both objects are deleted in Cleanup.
func ExposeService(t testing.TB, cs kubernetes.Interface, ns, name string, backends ...*Backend) {
	t.Helper()
	if len(backends) == 0 {
		t.Fatalf("traffictest: ExposeService %s/%s: no backends", ns, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{
				Name:       ServicePortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       ServicePort,
				TargetPort: intstr.FromInt32(BackendPort),
			}},
		},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("traffictest: creating Service %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() {
		deleteIgnoringNotFound(t, "Service "+ns+"/"+name, func(ctx context.Context) error {
			return cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
		})
	})

	eps := make([]discoveryv1.Endpoint, 0, len(backends))
	for _, b := range backends {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses: []string{b.Addr.Addr().String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       new(true),
				Serving:     new(true),
				Terminating: new(false),
			},
		})
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-traffictest",
			Namespace: ns,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   managedBy,
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{{
			Name:     new(ServicePortName),
			Protocol: new(corev1.ProtocolTCP),
			Port:     new(int32(BackendPort)),
		}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("traffictest: creating EndpointSlice %s/%s: %v", ns, slice.Name, err)
	}
	t.Cleanup(func() {
		deleteIgnoringNotFound(t, "EndpointSlice "+ns+"/"+slice.Name, func(ctx context.Context) error {
			return cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, slice.Name, metav1.DeleteOptions{})
		})
	})
}

// deleteIgnoringNotFound deletes an object in a Cleanup; the namespace may
// be gone already.
func deleteIgnoringNotFound(t testing.TB, what string, del func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := del(ctx); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("traffictest: deleting %s: %v", what, err)
	}
}
