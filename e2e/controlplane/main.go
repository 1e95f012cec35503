// Command kube-controlplane starts one local Kubernetes control plane for tests and demos:
// an embedded etcd plus an in-process kube-apiserver on 127.0.0.1, with its own CA, RBAC on,
// and an admin kubeconfig written once the server answers. It is test tooling only.
//
//	kube-controlplane --dir DIR [--name NAME] [--port P] [--etcd-port E] [--etcd-peer-port Q]
//
// When the server is ready it writes DIR/kubeconfig (cluster, user and context all named NAME)
// and prints one line "READY {json}" on stdout. SIGTERM or SIGINT stops kube-apiserver
// gracefully, then etcd, and the process exits 0.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

const (
	readyTimeout    = 3 * time.Minute
	shutdownTimeout = 30 * time.Second
)

// readyLine is what the parent process reads from stdout once the control plane serves requests.
type readyLine struct {
	Name       string `json:"name"`
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	Token      string `json:"token"`
	Etcd       string `json:"etcd"`
	Pid        int    `json:"pid"`
}

func main() {
	os.Exit(run())
}

func run() int {
	dir := flag.String("dir", "", "state directory for certificates, etcd data and the kubeconfig (required)")
	name := flag.String("name", "site", "name of the cluster, user and context in the written kubeconfig")
	port := flag.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (0 picks a free port)")
	etcdPort := flag.Int("etcd-port", 0, "etcd client port (0 picks a free port)")
	peerPort := flag.Int("etcd-peer-port", 0, "etcd peer port (0 picks a free port)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "kube-controlplane: --dir is required")
		return 2
	}

	// NewAPIServerCommand installs the process-wide SIGINT/SIGTERM handler itself (a second
	// installation would panic), so it is built exactly once, before anything else, and this
	// process only listens to the same signals alongside it.
	apiCmd := apiserverapp.NewAPIServerCommand()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)

	for _, p := range []*int{port, etcdPort, peerPort} {
		if *p == 0 {
			free, err := freePort()
			if err != nil {
				return fail("pick a free port", err)
			}
			*p = free
		}
	}
	pki := filepath.Join(*dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return fail("create "+pki, err)
	}
	// A restart in the same directory keeps the CA, the token and the etcd data, so clients
	// holding the old kubeconfig reconnect as if the server had only been down for a while.
	certs, tok, err := loadPKI(pki)
	if errors.Is(err, os.ErrNotExist) {
		if tok, err = randomToken(); err != nil {
			return fail("generate admin token", err)
		}
		certs, err = writePKI(pki, tok)
	}
	if err != nil {
		return fail("prepare certificates in "+pki, err)
	}

	etcdURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(*etcdPort)}
	etcd, err := startEtcd(filepath.Join(*dir, "etcd"), etcdURL, *peerPort)
	if err != nil {
		return fail("start embedded etcd", err)
	}
	defer etcd.Close()

	server := "https://127.0.0.1:" + strconv.Itoa(*port)
	p := func(file string) string { return filepath.Join(pki, file) }
	apiCmd.SetArgs([]string{
		"--etcd-servers=" + etcdURL.String(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(*port),
		"--cert-dir=" + filepath.Join(*dir, "apiserver-certs"),
		"--tls-cert-file=" + p("apiserver.crt"),
		"--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + p("ca.crt"),
		"--token-auth-file=" + p("tokens.csv"),
		"--service-account-issuer=" + server,
		"--service-account-key-file=" + p("sa.key"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		// No kube-controller-manager runs, so no default ServiceAccount is ever created.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// The kubernetes Service endpoint would be 127.0.0.1, which Endpoints validation rejects.
		"--endpoint-reconciler-type=none",
		// KUBE_CONTROLPLANE_PROFILING=1 serves /debug/pprof (to see what a benchmark costs the server).
		"--profiling=" + strconv.FormatBool(os.Getenv("KUBE_CONTROLPLANE_PROFILING") == "1"),
	})
	apiDone := make(chan int, 1)
	go func() { apiDone <- cli.Run(apiCmd) }()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: certs.pool, MinVersion: tls.VersionTLS12},
	}}
	deadline := time.Now().Add(readyTimeout)
	for _, path := range []string{"/readyz", "/api/v1/namespaces/default"} {
		for !answersOK(client, server+path, tok) {
			select {
			case code := <-apiDone:
				fmt.Fprintf(os.Stderr, "kube-controlplane: kube-apiserver exited during start-up with code %d\n", code)
				return 1
			case err := <-etcd.Err():
				return fail("etcd during start-up", err)
			case <-signals:
				return waitForAPIServer(apiDone)
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "kube-controlplane: %s%s not ready after %s\n", server, path, readyTimeout)
				genericapiserver.RequestShutdown()
				waitForAPIServer(apiDone)
				return 1
			}
		}
	}

	kubeconfig := filepath.Join(*dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, *name, server, certs.caPEM, tok); err != nil {
		return fail("write kubeconfig", err)
	}
	line, err := json.Marshal(readyLine{Name: *name, Kubeconfig: kubeconfig, Server: server, Token: tok, Etcd: etcdURL.String(), Pid: os.Getpid()})
	if err != nil {
		return fail("encode ready line", err)
	}
	fmt.Printf("READY %s\n", line)

	select {
	case <-signals:
		// kube-apiserver's own handler got the same signal and is already shutting down.
		return waitForAPIServer(apiDone)
	case code := <-apiDone:
		return code
	case err := <-etcd.Err():
		genericapiserver.RequestShutdown()
		waitForAPIServer(apiDone)
		return fail("etcd", err)
	}
}

func startEtcd(dataDir string, clientURL url.URL, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "controlplane"
	cfg.Dir = dataDir
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "error", []string{"stderr"}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true // throw-away test data
	// kube-apiserver's watch cache relies on progress notifications for consistent reads.
	cfg.WatchProgressNotifyInterval = 5 * time.Second
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, nil
	case err := <-etcd.Err():
		etcd.Close()
		return nil, err
	case <-time.After(time.Minute):
		etcd.Close()
		return nil, errors.New("etcd not ready after 1m")
	}
}

func waitForAPIServer(apiDone <-chan int) int {
	select {
	case code := <-apiDone:
		return code
	case <-time.After(shutdownTimeout):
		fmt.Fprintf(os.Stderr, "kube-controlplane: kube-apiserver did not stop within %s\n", shutdownTimeout)
		return 1
	}
}

func answersOK(client *http.Client, u, token string) bool {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// writeKubeconfig writes an admin kubeconfig whose cluster, user and context are all called name,
// atomically so that a reader never sees half a file.
func writeKubeconfig(path, name, server string, caPEM []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type pkiOut struct {
	caPEM []byte
	pool  *x509.CertPool
}

// writePKI creates a CA, a serving certificate for 127.0.0.1/localhost, the service-account
// signing key and the static admin token file.
func writePKI(dir, token string) (pkiOut, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pkiOut{}, err
	}
	ca, err := sign(&x509.Certificate{
		Subject: pkix.Name{CommonName: "multi-casskop-test-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}, nil, &caKey.PublicKey, caKey)
	if err != nil {
		return pkiOut{}, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pkiOut{}, err
	}
	srv, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return pkiOut{}, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pkiOut{}, err
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return pkiOut{}, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return pkiOut{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	files := map[string][]byte{
		"ca.crt":        caPEM,
		"apiserver.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Raw}),
		"apiserver.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":        pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		"tokens.csv":    []byte(fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", token)),
		"admin.token":   []byte(token),
	}
	// admin.token is written last: its presence marks a complete PKI directory.
	for _, file := range []string{"ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "tokens.csv", "admin.token"} {
		if err := os.WriteFile(filepath.Join(dir, file), files[file], 0o600); err != nil {
			return pkiOut{}, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pkiOut{caPEM: caPEM, pool: pool}, nil
}

// loadPKI reads the CA and admin token written by an earlier run in the same directory.
func loadPKI(dir string) (pkiOut, string, error) {
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return pkiOut{}, "", err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return pkiOut{}, "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return pkiOut{}, "", fmt.Errorf("%s/ca.crt holds no certificate", dir)
	}
	return pkiOut{caPEM: caPEM, pool: pool}, string(tok), nil
}

// sign issues tmpl signed by parent (self-signed when parent is nil).
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func fail(what string, err error) int {
	fmt.Fprintf(os.Stderr, "kube-controlplane: %s: %v\n", what, err)
	return 1
}
