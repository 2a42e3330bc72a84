package argocd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Client reads and drives one Application.
type Client interface {
	// Get reads the Application.
	Get(ctx context.Context) (*Application, error)
	// Refresh asks Argo CD to compare the Application with Git now; hard
	// also drops the repo-server's cached manifests.
	Refresh(ctx context.Context, hard bool) error
	// Sync starts a sync of the Application to its target revision (or
	// to revision, when not empty), pruning what Git no longer has when
	// prune is set.
	Sync(ctx context.Context, revision string, prune bool) error
	// Unhealthy lists what is not healthy in the Application's resources
	// as "Kind namespace/name: Health (message)". Argo CD v3 keeps
	// resource health out of the Application's status by default (in its
	// resource tree instead): the API client reads the resource tree, the
	// Kubernetes client the workloads themselves when the Application
	// deploys to the cluster it reads Applications in.
	Unhealthy(ctx context.Context, a *Application) []string
	// String names the Application and the way it is reached, for logs.
	String() string
}

// RefreshAnnotation is the annotation the controller reads as "refresh
// now" (and removes once done).
const RefreshAnnotation = "argocd.argoproj.io/refresh"

// GVR is the resource Applications are served as.
var GVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// Initiator is the user name Gantry's syncs are recorded under in the
// Application's operation and history.
const Initiator = "gantry"

// KubeClient is a Client through the Kubernetes API: the Application
// resource itself.
type KubeClient struct {
	dyn             dynamic.Interface
	namespace, name string
}

// NewKube returns a Client for the Application name in namespace (Argo
// CD's namespace, argocd, unless apps-in-any-namespace is used).
func NewKube(cfg *rest.Config, namespace, name string) (*KubeClient, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &KubeClient{dyn: dyn, namespace: namespace, name: name}, nil
}

func (k *KubeClient) String() string {
	return fmt.Sprintf("Application %s/%s (Kubernetes API)", k.namespace, k.name)
}

func (k *KubeClient) Get(ctx context.Context) (*Application, error) {
	u, err := k.dyn.Resource(GVR).Namespace(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf(`%s not found: check input "argocd-application" and "argocd-namespace" (the namespace the Application object lives in, argocd by default): %w`, k, err)
		}
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return nil, fmt.Errorf(`%s: the kubeconfig's user may not read Applications (RBAC: get/patch applications.argoproj.io in %s): %w`, k, k.namespace, err)
		}
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	b, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var a Application
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: reading the Application: %w", k, err)
	}
	return &a, nil
}

func (k *KubeClient) patch(ctx context.Context, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = k.dyn.Resource(GVR).Namespace(k.namespace).Patch(ctx, k.name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: Initiator})
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

func (k *KubeClient) Refresh(ctx context.Context, hard bool) error {
	kind := "normal"
	if hard {
		kind = "hard"
	}
	return k.patch(ctx, map[string]any{"metadata": map[string]any{"annotations": map[string]any{RefreshAnnotation: kind}}})
}

// Sync writes the operation the Argo CD API server would write: the
// controller starts it on its next look at the Application. An operation
// already set (a sync in progress) is not replaced: Sync waits for it to
// end first, as `argocd app sync` refuses while one runs.
func (k *KubeClient) Sync(ctx context.Context, revision string, prune bool) error {
	for {
		a, err := k.Get(ctx)
		if err != nil {
			return err
		}
		if a.Operation == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: another operation is still in progress: %w", k, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
	sync := map[string]any{"prune": prune}
	if revision != "" {
		sync["revision"] = revision
	}
	return k.patch(ctx, map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": Initiator},
		"sync":        sync,
		"retry":       map[string]any{},
	}})
}

// APIClient is a Client through the Argo CD API server.
type APIClient struct {
	base            *url.URL
	token           string
	namespace, name string
	http            *http.Client
}

// APIOptions configure NewAPI.
type APIOptions struct {
	// Token is the bearer token (an Argo CD account's API token).
	Token string
	// CA is a PEM file or content the server's certificate chains to, when
	// not the system's roots.
	CA string
	// Insecure skips TLS verification (argocd --insecure); for tests and
	// self-signed servers only.
	Insecure bool
}

// NewAPI returns a Client for the Application name (in namespace; empty
// is the server's own namespace) through the API server at baseURL.
func NewAPI(baseURL, namespace, name string, o APIOptions) (*APIClient, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(baseURL), "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf(`input "argocd-url" is %q: give the Argo CD server's URL, such as https://argocd.example.com`, baseURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CA != "" || o.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.Insecure} //nolint:gosec // asked for
		if o.CA != "" {
			pem := []byte(o.CA)
			if !strings.Contains(o.CA, "-----BEGIN") {
				if pem, err = os.ReadFile(o.CA); err != nil {
					return nil, fmt.Errorf(`input "argocd-ca": %w`, err)
				}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New(`input "argocd-ca" holds no PEM certificate`)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return &APIClient{base: u, token: o.Token, namespace: namespace, name: name, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (c *APIClient) String() string {
	if c.namespace == "" { // the server's own namespace
		return fmt.Sprintf("Application %s (Argo CD API %s)", c.name, c.base.Redacted())
	}
	return fmt.Sprintf("Application %s/%s (Argo CD API %s)", c.namespace, c.name, c.base.Redacted())
}

func (c *APIClient) do(ctx context.Context, method, path string, q url.Values, body any, into any) error {
	u := *c.base
	u.Path += path
	if c.namespace != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("appNamespace", c.namespace)
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var e struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && (e.Message != "" || e.Error != "") {
			msg = e.Message
			if msg == "" {
				msg = e.Error
			}
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf(`%s: %s %s: 401 %s: input "argocd-token" is missing, expired or not a token of this server`, c, method, path, oneLine(msg))
		case http.StatusForbidden:
			return fmt.Errorf(`%s: %s %s: 403 %s: the token's account lacks the RBAC permission (applications get/sync in the Application's project)`, c, method, path, oneLine(msg))
		case http.StatusNotFound:
			return fmt.Errorf(`%s: %s %s: 404 %s: check input "argocd-application" (and "argocd-namespace" for apps outside the server's namespace)`, c, method, path, oneLine(msg))
		}
		return &StatusError{Code: resp.StatusCode, Msg: fmt.Sprintf("%s: %s %s: %d %s", c, method, path, resp.StatusCode, oneLine(msg))}
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s: %s %s: reading the answer: %w", c, method, path, err)
		}
	}
	return nil
}

// StatusError is an API answer other than 2xx, 401, 403 and 404 (which get
// their own words).
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

func (c *APIClient) appPath() string { return "/api/v1/applications/" + url.PathEscape(c.name) }

func (c *APIClient) Get(ctx context.Context) (*Application, error) {
	var a Application
	if err := c.do(ctx, http.MethodGet, c.appPath(), nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (c *APIClient) Refresh(ctx context.Context, hard bool) error {
	kind := "normal"
	if hard {
		kind = "hard"
	}
	return c.do(ctx, http.MethodGet, c.appPath(), url.Values{"refresh": {kind}}, nil, nil)
}

func (c *APIClient) Sync(ctx context.Context, revision string, prune bool) error {
	body := map[string]any{"name": c.name, "prune": prune}
	if revision != "" {
		body["revision"] = revision
	}
	if c.namespace != "" {
		body["appNamespace"] = c.namespace
	}
	for {
		err := c.do(ctx, http.MethodPost, c.appPath()+"/sync", nil, body, nil)
		// A sync still running answers 400 "another operation is already
		// in progress": wait for it as the Kubernetes client does.
		var se *StatusError
		if err == nil || !errors.As(err, &se) || !strings.Contains(se.Msg, "another operation is already in progress") {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
}

// Unhealthy reads the resource tree (GET …/resource-tree): every node whose
// health is known and not Healthy, pods included.
func (c *APIClient) Unhealthy(ctx context.Context, a *Application) []string {
	if out := a.UnhealthyResources(); len(out) > 0 {
		return out
	}
	var tree struct {
		Nodes []Resource `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, c.appPath()+"/resource-tree", nil, nil, &tree); err != nil {
		return nil
	}
	return unhealthy(tree.Nodes)
}
