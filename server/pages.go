package server

import "net/http"

// pages serves the web UI. (Replaced by the web app; this stub keeps the API server buildable.)
type pages struct{ s *Server }

func newPages(s *Server) (*pages, error) { return &pages{s: s}, nil }

func (p *pages) register(mux *http.ServeMux) {}
