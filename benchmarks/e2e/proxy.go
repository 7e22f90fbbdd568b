package e2e

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a loopback TCP proxy in front of the PostgreSQL server that
// reads the wire protocol both ways and counts, while counting is on:
//
//   - round trips: the times a client sends a message after the server
//     answered it a ReadyForQuery since its previous message, that is the
//     times the client had to wait for the server;
//   - statements: the CommandComplete and ErrorResponse messages the
//     server sends, one per statement it executed (BEGIN, COMMIT and
//     SAVEPOINT included; a Parse or a Describe is not one).
type Proxy struct {
	ln       net.Listener
	target   string
	counting atomic.Bool
	trips    atomic.Int64
	stmts    atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Start resets the counters and starts counting.
func (p *Proxy) Start() {
	p.trips.Store(0)
	p.stmts.Store(0)
	p.counting.Store(true)
}

// Stop stops counting and returns the round trips and statements counted
// since Start (the PostgreSQL protocol does not report the rows written:
// Rows is -1).
func (p *Proxy) Stop() Counts {
	p.counting.Store(false)
	return Counts{Trips: p.trips.Load(), Stmts: p.stmts.Load(), Rows: -1}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var ready atomic.Bool // the server sent ReadyForQuery since the client's last message
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer s.Close()
			p.pump(s, c, true, func(t byte) {
				if ready.Swap(false) && p.counting.Load() {
					p.trips.Add(1)
				}
			})
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			p.pump(c, s, false, func(t byte) {
				switch t {
				case 'Z':
					ready.Store(true)
				case 'C', 'E':
					if p.counting.Load() {
						p.stmts.Add(1)
					}
				}
			})
		}()
	}
}

// pump copies messages from src to dst, calling seen with the type of each
// before forwarding it. A client's first message (the startup packet) has
// no type byte.
func (p *Proxy) pump(dst, src net.Conn, fromClient bool, seen func(byte)) {
	untyped := fromClient
	hdr := make([]byte, 5)
	buf := make([]byte, 0, 64<<10)
	for {
		var t byte
		var n int
		if untyped {
			if _, err := io.ReadFull(src, hdr[:4]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint32(hdr[:4])) - 4
			buf = append(buf[:0], hdr[:4]...)
			untyped = false
		} else {
			if _, err := io.ReadFull(src, hdr); err != nil {
				return
			}
			t = hdr[0]
			n = int(binary.BigEndian.Uint32(hdr[1:5])) - 4
			buf = append(buf[:0], hdr...)
			seen(t)
		}
		if n < 0 {
			return
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(src, buf[start:]); err != nil {
			return
		}
		if _, err := dst.Write(buf); err != nil {
			return
		}
	}
}
