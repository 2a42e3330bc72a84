package argocd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The API client's answers to errors, against a stand-in server (the real
// Argo CD API server in the deploy stage's tests runs with auth off, so
// 401 and 403 are exercised here): each names the input to fix, and the
// token never appears.
func TestAPIErrors(t *testing.T) {
	const token = "argocd-s3cret-token"
	for _, c := range []struct {
		code int
		body string
		want string
	}{
		{401, `{"error":"invalid session: token is expired","code":16,"message":"invalid session: token is expired"}`, `input "argocd-token"`},
		{403, `{"message":"permission denied: applications, get, default/shop"}`, "RBAC permission"},
		{404, `{"message":"applications.argoproj.io \"shop\" not found"}`, `input "argocd-application"`},
		{500, `upstream down`, "500 upstream down"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Path != "/api/v1/applications/shop" {
				t.Errorf("request %s %s with %q", r.Method, r.URL, r.Header.Get("Authorization"))
			}
			w.WriteHeader(c.code)
			_, _ = w.Write([]byte(c.body))
		}))
		cl, err := NewAPI(srv.URL+"/", "", "shop", APIOptions{Token: token})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Get(t.Context())
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), token) {
			t.Errorf("%d: err = %v, want it to contain %q and not the token", c.code, err, c.want)
		}
	}
	if _, err := NewAPI("argocd.example.com", "", "shop", APIOptions{}); err == nil || !strings.Contains(err.Error(), `input "argocd-url"`) {
		t.Errorf("a URL without scheme: %v", err)
	}
}
