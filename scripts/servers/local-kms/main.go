// Runs local-kms (github.com/nsmithuk/local-kms, pinned in go.mod) on 127.0.0.1 only: upstream's main listens on
// ":$PORT", every interface, and has no option to bind one address. Not a fake: every request goes to local-kms's
// own handler and database. Reads PORT, KMS_REGION, KMS_ACCOUNT_ID, KMS_DATA_PATH, KMS_SEED_PATH with upstream's
// defaults; upstream's seeding is unexported, so an existing seed file is refused rather than silently ignored.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	kms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	config.AWSAccountId, config.AWSRegion = env("KMS_ACCOUNT_ID", "111122223333"), env("KMS_REGION", "eu-west-2")
	config.DatabasePath, _ = filepath.Abs(env("KMS_DATA_PATH", "/tmp/local-kms"))
	if seed := env("KMS_SEED_PATH", "/init/seed.yaml"); func() bool { _, err := os.Stat(seed); return err == nil }() {
		log.Fatalf("seed file %s exists, but this launcher does not seed keys", seed)
	}
	database := data.NewDatabase(config.DatabasePath)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", env("PORT", "8080")))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("local-kms on %s (region %s, account %s, data %s)", ln.Addr(), config.AWSRegion, config.AWSAccountId, config.DatabasePath)
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kms.HandleRequest(w, r, database) })))
}
