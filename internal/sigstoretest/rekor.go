package sigstoretest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// rekorOrigin is the checkpoint origin of the log. Clients derive it from
// the log's URL (its host without the port), so it must be the host of
// RekorURL.
const rekorOrigin = "127.0.0.1"

// rekorGrace is how long Rekor gets to shut down: on SIGTERM it stops its
// servers and sequencer in well under a second, and Stop waits for it, so
// its ports are free afterwards.
const rekorGrace = 10 * time.Second

// rekor is a Rekor v2 (tiles, POSIX storage) log.
type rekor struct {
	url     string
	key     ed25519.PublicKey
	storage string // the POSIX storage directory
	proc    *testproc.Proc
	restart func() // on new ports, after losing one of them
}

// startRekor makes the log's ed25519 key and starts Rekor without waiting
// for it.
func startRekor(t testing.TB, bin, dir string) *rekor {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, err := writeFile(dir, "rekor.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(dir, "rekor-tiles")
	if err := os.Mkdir(storage, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &rekor{key: pub, storage: storage}
	r.restart = func() {
		ports := freePorts(t, 3)
		args := []string{
			"serve",
			"--hostname=" + rekorOrigin,
			"--storage-dir=" + storage,
			"--signer-filepath=" + keyPath,
			"--http-address=127.0.0.1", "--http-port=" + ports[0],
			"--grpc-address=127.0.0.1", "--grpc-port=" + ports[1],
			"--http-metrics-port=" + ports[2],
			// A signature waits for a checkpoint covering its entry: publish often.
			"--checkpoint-interval=250ms",
			"--batch-max-age=100ms",
		}
		r.url = "http://" + rekorOrigin + ":" + ports[0]
		r.proc = startProc(t, dir, "rekor", bin, args, childEnv(dir), rekorGrace)
	}
	r.restart()
	return r
}

// ready waits until the log answers (/healthz) and has published its
// first checkpoint, and writes its public key to dir/rekor.pub. The server
// does not serve reads (tiles and checkpoint are static files of the
// storage directory), so the checkpoint is read from there.
func (r *rekor) ready(dir string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	err := waitRestarting(&r.proc, r.restart, timeout, func() (bool, error) {
		if _, err := httpGet(context.Background(), client, r.url+"/healthz"); err != nil {
			return false, err
		}
		cp, err := os.ReadFile(filepath.Join(r.storage, "checkpoint"))
		if err != nil {
			return false, fmt.Errorf("no checkpoint yet: %w", err)
		}
		if !bytes.HasPrefix(cp, []byte(rekorOrigin+"\n")) {
			return false, fmt.Errorf("checkpoint of another origin: %.100q", cp)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for rekor on %s: %w", r.url, err)
	}
	der, err := x509.MarshalPKIXPublicKey(r.key)
	if err != nil {
		return err
	}
	_, err = writeFile(dir, "rekor.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return err
}
