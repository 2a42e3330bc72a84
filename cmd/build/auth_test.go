package main

import "github.com/google/go-containerregistry/pkg/authn"

func basic(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}
