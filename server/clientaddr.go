package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxy reads a trusted proxy as an address ("10.0.0.7", "::1") or a CIDR prefix
// ("10.0.0.0/8", "fd00::/8").
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q is not an IP address or a CIDR prefix (such as 10.0.0.0/8)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trustedProxy reports whether a is one of Config.TrustedProxies.
func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client that sent r: the peer's, or, when the peer is a trusted
// proxy, the nearest address in X-Forwarded-For (or Forwarded) that is not one (proxies append the address they
// heard from, so the right end of the list is the nearest and the only part that can be
// believed). A hop that is not an address ends the walk at the last good one. The zero Addr means
// the peer's address could not be read.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !s.trustedProxy(peer) {
		return peer
	}
	hops := forwardedHops(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			break
		}
		client = a
		if !s.trustedProxy(a) {
			break
		}
	}
	return client
}

// forwardedHops returns the addresses a proxy chain recorded, farthest first: X-Forwarded-For's
// list, or, without it, the for= of each element of Forwarded (RFC 7239: `for=192.0.2.60`,
// `for="[2001:db8::1]:4711"`). An element without for=, or whose for= is "unknown" or an
// obfuscated name, gives a hop that is not an address, which ends clientAddr's walk there.
func forwardedHops(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			hops = append(hops, strings.Split(v, ",")...)
		}
		return hops
	}
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			hop := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hop = strings.Trim(val, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops
}

// sendsForwarded reports whether r names a client in X-Forwarded-For or Forwarded.
func sendsForwarded(r *http.Request) bool {
	return r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != ""
}

// parseHop reads an address as RemoteAddr and X-Forwarded-For give it: "1.2.3.4", "1.2.3.4:5678",
// "2001:db8::1", "[2001:db8::1]:5678".
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// addrKey is what per-address limits count against: an IPv4 address, or an IPv6 address's /64,
// the smallest network one subscriber is usually given.
func addrKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		return netip.PrefixFrom(a, 64).Masked().String()
	default:
		return a.String()
	}
}
