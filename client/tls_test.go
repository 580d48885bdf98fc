package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"natter"
	"natter/client"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files in dir and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "natter test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate natter serves HTTPS and wss:// on its one port, over HTTP/1.1;
// every transport delivers, the session cookie is Secure, and a long-poll's connection is kept
// for the next poll.
func TestTLS(t *testing.T) {
	ns := startNatter(t)
	ns.close()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	ns.cfg.TLSCert, ns.cfg.TLSKey = certFile, keyFile
	ns.open()
	if !strings.HasPrefix(ns.URL, "https://") {
		t.Fatalf("URL %q, want https://", ns.URL)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	ctx := testCtx(t)

	// Sign in over HTTPS: HTTP/1.1 (no HTTP/2: streams take over their connections), and a
	// Secure cookie.
	resp, err := hc.Post(ns.URL+"/api/session", "application/json", strings.NewReader(`{"name":"tess"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("sign-in over TLS: %s %s", resp.Status, resp.Proto)
	}
	if cs := resp.Cookies(); len(cs) == 0 || !cs[0].Secure {
		t.Fatalf("session cookie over TLS is not Secure: %v", cs)
	}

	c := client.New(ns.URL, client.WithHTTPClient(hc))
	if err := c.SignIn(ctx, "tess", ""); err != nil {
		t.Fatal(err)
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	cols := map[client.Transport]*collector{}
	for _, tr := range transports {
		col := newCollector()
		cols[tr] = col
		go c.Subscribe(subCtx, "lobby", 0, tr, col.add)
	}
	for i := range 3 {
		if _, err := c.Send(ctx, "lobby", "over TLS "+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	for tr, col := range cols {
		msgs := col.waitFor(t, 3)
		checkSeqs(t, msgs, 1, 3)
		if msgs[0].Body != "over TLS a" {
			t.Fatalf("%s: first body %q", tr, msgs[0].Body)
		}
	}

	// Two long-polls in a row on one kept TLS connection.
	var reused []bool
	for range 2 {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}), "GET", ns.URL+"/api/rooms/lobby/messages?after=3&wait=0.05", nil)
		req.Header.Set("Authorization", "Bearer "+c.Token())
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Messages []natter.Message }
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close || len(page.Messages) != 0 {
			t.Fatalf("long-poll over TLS: %s close %v, %d messages", resp.Status, resp.Close, len(page.Messages))
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("the second long-poll did not reuse the first's TLS connection: %v", reused)
	}
}
