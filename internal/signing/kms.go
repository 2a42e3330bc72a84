package signing

// KMS providers for the key input's awskms://, gcpkms://, azurekms:// and
// hashivault:// URIs: importing them registers them with sigstore's kms
// package, as the cosign CLI does. Credentials come from each provider's
// usual sources (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*, VAULT_ADDR
// and VAULT_TOKEN), read by the provider, not by Gantry.
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)
