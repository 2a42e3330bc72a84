package pipeline

import "testing"

// The environment sets a stage's input as a step would: the stage's own
// variable first, then the one for every stage; and sign uses the local
// key only when it has nothing better.
func TestOverridesAndLocalSigning(t *testing.T) {
	env := map[string]string{
		"GANTRY_REGISTRY_PASSWORD":      "for-all",
		"GANTRY_SIGN_REGISTRY_PASSWORD": "for-sign",
	}
	r := &run{opts: Options{Getenv: func(k string) string { return env[k] }}}
	if got := r.input("sbom", "registry-password"); got != "for-all" {
		t.Errorf("sbom registry-password %q, want GANTRY_REGISTRY_PASSWORD's", got)
	}
	if got := r.input("sign", "registry-password"); got != "for-sign" {
		t.Errorf("sign registry-password %q, want GANTRY_SIGN_REGISTRY_PASSWORD's", got)
	}
	if overrideVar("build", "push-by-digest") != "GANTRY_BUILD_PUSH_BY_DIGEST" {
		t.Error(overrideVar("build", "push-by-digest"))
	}
	for _, tt := range []struct {
		env    map[string]string
		dryRun bool
		local  bool
	}{
		{map[string]string{}, false, true},
		{map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token"}, false, false},
		{map[string]string{"SIGSTORE_ID_TOKEN": "eyJ"}, false, false},
		{map[string]string{"SIGSTORE_ID_TOKEN": "eyJ"}, true, true},
		{map[string]string{"GANTRY_SIGN_KEY": "awskms:///alias/release"}, false, false},
		{map[string]string{"GANTRY_SIGN_KEYLESS": "true"}, false, false},
		{map[string]string{"GANTRY_SIGN_KEYLESS": "false", "SIGSTORE_ID_TOKEN": "eyJ"}, false, true},
	} {
		r := &run{opts: Options{DryRun: tt.dryRun, Getenv: func(k string) string { return tt.env[k] }}}
		if got := r.localSigning(); got != tt.local {
			t.Errorf("env %v, dry-run %v: local key %v, want %v", tt.env, tt.dryRun, got, tt.local)
		}
	}
}
