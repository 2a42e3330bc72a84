package progressive

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gantry-ci/gantry/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// createServices creates plain Services (no backends: the API-server-only
// tests send no traffic) for the routers to find.
func createServices(t *testing.T, cs kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		if _, err := cs.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
