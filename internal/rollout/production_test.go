package rollout

import (
	"strings"
	"testing"
)

// The GitHub Deployment's production flag: the input when given, else the
// environment's exact name, as GitHub documents production_environment.
func TestProductionEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env, input string
		want       bool
	}{
		{"production", "", true}, {"Production", "", true}, {"prod", "", true}, {" PROD ", "", true},
		{"preprod", "", false}, {"non-prod", "", false}, {"production-eu", "", false}, {"staging", "", false},
		{"production-eu", "true", true}, {"production", "false", false},
	} {
		in := Inputs{Environment: tc.env, ProductionEnvironment: tc.input}
		if got := in.production(); got != tc.want {
			t.Errorf("environment %q, production-environment %q: production %v, want %v", tc.env, tc.input, got, tc.want)
		}
	}
	in := Inputs{Environment: "production", Action: "deploy", Image: "r@sha256:" + strings.Repeat("a", 64), Manifests: "k8s", Strategy: "rolling", Lock: "wait", ProductionEnvironment: "yes"}
	if err := in.Validate(); err == nil || !strings.Contains(err.Error(), `input "production-environment" is "yes": use true, false`) {
		t.Errorf("production-environment yes: %v", err)
	}
}
