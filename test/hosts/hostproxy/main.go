// Command hostproxy gives a fresh test host (its own network namespace, no uplink) the two
// services a new user's machine reaches on the network, and nothing else: Debian's archive and the
// Go module proxy. It is an HTTP forward proxy on a unix socket on the machine (serve), and a
// TCP-to-unix forwarder inside the host (forward), so the host's apt (Acquire::http::Proxy) and go
// (https_proxy) reach the network as on a machine behind a proxy. Hosts not in -allow are refused
// (403) and logged: deny by default.
//
//	hostproxy serve -listen /var/lib/lockstep-hosts/state/NAME/share/proxy.sock -allow deb.debian.org,proxy.golang.org
//	hostproxy forward -listen 127.0.0.1:3128 -to /mnt/share/proxy.sock
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostproxy serve|forward [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "", "serve: the unix socket; forward: the TCP address")
	to := fs.String("to", "", "forward: the unix socket of hostproxy serve")
	allow := fs.String("allow", "deb.debian.org,proxy.golang.org,sum.golang.org", "serve: hosts that may be reached, comma-separated")
	fs.Parse(os.Args[2:])
	log.SetFlags(log.Ltime)
	switch os.Args[1] {
	case "serve":
		os.Remove(*listen)
		l, err := net.Listen("unix", *listen)
		if err != nil {
			log.Fatal(err)
		}
		os.Chmod(*listen, 0o666)
		p := &proxy{allow: map[string]bool{}}
		for _, h := range strings.Split(*allow, ",") {
			p.allow[strings.TrimSpace(h)] = true
		}
		log.Fatal(http.Serve(l, p))
	case "forward":
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				log.Fatal(err)
			}
			go func() {
				u, err := net.Dial("unix", *to)
				if err != nil {
					log.Print(err)
					c.Close()
					return
				}
				pipe(c, u)
			}()
		}
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

type proxy struct {
	allow map[string]bool
	mu    sync.Mutex
	n     map[string]int
}

// allowed: the host part of host:port or a URL's host, in the list.
func (p *proxy) allowed(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	return p.allow[h]
}

var transport = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if r.Method != http.MethodConnect {
		host = r.URL.Host
	}
	if !p.allowed(host) {
		log.Printf("refused %s %s", r.Method, host)
		http.Error(w, "hostproxy: "+host+" is not allowed", http.StatusForbidden)
		return
	}
	p.mu.Lock()
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[host]++
	if p.n[host] == 1 {
		log.Printf("first request to %s", host)
	}
	p.mu.Unlock()
	if r.Method == http.MethodConnect {
		up, err := net.DialTimeout("tcp", r.Host, 30*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		c, rw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		rw.Flush()
		if n := rw.Reader.Buffered(); n > 0 {
			b, _ := rw.Reader.Peek(n)
			up.Write(b)
		}
		pipe(c, up)
		return
	}
	if r.URL.Scheme != "http" {
		http.Error(w, "hostproxy: only http:// or CONNECT", http.StatusBadRequest)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Connection")
	resp, err := transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
