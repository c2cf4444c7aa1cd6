// Command httpembed embeds a Generator in a net/http handler:
//
//	go run ./examples/httpembed -model models/g2p-en &
//	curl -s 'localhost:8081/g2p?text=hello'   # HH EH L OW
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/s2s-dev/s2s"
)

func main() {
	dir := flag.String("model", "models/g2p-en", "model directory")
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()
	g, err := s2s.Open(*dir, s2s.Options{}) // safe for concurrent use
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	http.HandleFunc("GET /g2p", func(w http.ResponseWriter, r *http.Request) {
		opts := g.Defaults()
		opts.MaxNewTokens = 32
		// r.Context() ends when the client leaves: generation stops then.
		out, err := g.GenerateText(r.Context(), r.URL.Query().Get("text"), opts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte(out + "\n"))
	})
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	log.Fatal(srv.ListenAndServe())
}
