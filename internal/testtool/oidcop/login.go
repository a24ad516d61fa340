package oidcop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// BrowserClient returns an HTTP client that behaves like a browser for a
// sign-in: a cookie jar, redirects followed, the provider's CA trusted.
func (p *Provider) BrowserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS12},
		},
	}
}

// ErrLoginRefused: the provider's login page refused the credentials.
var ErrLoginRefused = errors.New("oidcop: login refused")

// Login goes through a sign-in as a person in a browser would: it opens
// startURL (the relying party's login URL) with c (see BrowserClient),
// which leads to the provider's login page, fills in the form and submits
// it, and follows the redirects back to the relying party. It returns the
// last response (its body unread); the caller closes it.
func (p *Provider) Login(c *http.Client, startURL, username, password string) (*http.Response, error) {
	resp, err := c.Get(startURL)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	at := resp.Request.URL
	if !strings.HasPrefix(at.String(), p.Issuer+"/login") || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidcop: expected the login page, got %d at %s", resp.StatusCode, at.Redacted())
	}
	form := url.Values{
		"authRequestID": {at.Query().Get("authRequestID")},
		"username":      {username},
		"password":      {password},
	}
	resp, err = c.PostForm(p.Issuer+"/login", form)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Request.URL.String(), p.Issuer) {
		_ = resp.Body.Close()
		return nil, ErrLoginRefused
	}
	return resp, nil
}
