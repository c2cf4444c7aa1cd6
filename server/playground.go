package server

import (
	_ "embed"
	"net/http"
)

// playgroundPage is the one-page playground: input text, the main
// parameters, the output streamed from /generate_stream as it comes.
//
//go:embed playground/index.html
var playgroundPage []byte

func (s *Server) playground(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	s.deadline(w)
	w.Write(playgroundPage)
}
