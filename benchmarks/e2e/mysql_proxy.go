package e2e

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
)

// MySQLProxy is a loopback TCP proxy in front of a MySQL or MariaDB server
// that reads the client/server protocol both ways (packets of a 3-byte
// length and a 1-byte sequence id) and counts, while counting is on:
//
//   - round trips: the commands the client sends that the server answers.
//     A command is a packet with sequence id 0 (the packets of the
//     handshake and of a payload longer than a packet have ids above 0);
//     COM_QUIT, COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA get no answer
//     and are not round trips. The protocol has no pipelining: a client
//     reads the whole answer before it sends its next command, so each
//     command is one wait for the server;
//   - statements: the results of a COM_QUERY, one per statement the server
//     ran (an OK, an ERR, or a result set; a multi-statement query gives
//     one each, SET, BEGIN and COMMIT included), and one per prepared
//     statement executed;
//   - rows: the affected rows of the OK packets of a COM_QUERY, which is
//     what each INSERT, UPDATE and DELETE wrote (the rows an UPDATE
//     matched with the driver's clientFoundRows, which sqlstore.MySQLDSN
//     sets).
//
// A connection on which the client asks for TLS or compression cannot be
// read: its counts are then unknown (-1).
type MySQLProxy struct {
	ln       net.Listener
	target   string
	counting atomic.Bool
	trips    atomic.Int64
	stmts    atomic.Int64
	rows     atomic.Int64
	blind    atomic.Bool // a connection could not be read
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// NewMySQLProxy listens on a free loopback port and forwards to target.
func NewMySQLProxy(target string) (*MySQLProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &MySQLProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *MySQLProxy) Addr() string { return p.ln.Addr().String() }

// Start resets the counters and starts counting.
func (p *MySQLProxy) Start() {
	p.trips.Store(0)
	p.stmts.Store(0)
	p.rows.Store(0)
	p.counting.Store(true)
}

// Stop stops counting and returns the counts since Start.
func (p *MySQLProxy) Stop() Counts {
	p.counting.Store(false)
	if p.blind.Load() {
		return Counts{Trips: -1, Stmts: -1, Rows: -1}
	}
	return Counts{Trips: p.trips.Load(), Stmts: p.stmts.Load(), Rows: p.rows.Load()}
}

// Close stops the proxy and closes its connections.
func (p *MySQLProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *MySQLProxy) accept() {
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
		st := &mysqlConnState{p: p}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer s.Close()
			mysqlPump(s, c, st.fromClient)
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			mysqlPump(c, s, st.fromServer)
		}()
	}
}

// The packets of the protocol this proxy reads.
const (
	mysqlComQuit        = 0x01
	mysqlComQuery       = 0x03
	mysqlComSendLong    = 0x18
	mysqlComStmtExecute = 0x17
	mysqlComStmtClose   = 0x19

	mysqlOK  = 0x00
	mysqlEOF = 0xfe
	mysqlERR = 0xff

	mysqlClientCompress     = 1 << 5
	mysqlClientSSL          = 1 << 11
	mysqlClientDeprecateEOF = 1 << 24

	mysqlMoreResults = 0x0008 // SERVER_MORE_RESULTS_EXISTS

	mysqlMaxPayload = 1<<24 - 1
)

// The states of the answer to a COM_QUERY.
const (
	ansNone    = iota // not reading an answer
	ansHeader         // the first packet of a statement's result
	ansColumns        // column definitions
	ansColEOF         // the EOF after the definitions (without CLIENT_DEPRECATE_EOF)
	ansRows           // rows, up to the EOF or OK that ends them
)

// mysqlConnState is what the proxy knows of one connection.
type mysqlConnState struct {
	p             *MySQLProxy
	mu            sync.Mutex
	handshaken    bool // the client sent its handshake response
	blind         bool
	deprecateEOF  bool
	state         int
	columns       uint64 // column definitions still to come
	clientPartial bool   // the client's last packet was a full one: the next continues it
	serverPartial bool
}

// fromClient reads a packet the client sent.
func (s *mysqlConnState) fromClient(seq byte, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cont := s.clientPartial
	s.clientPartial = len(payload) == mysqlMaxPayload
	if s.blind || cont {
		return
	}
	if !s.handshaken {
		// The handshake response (or an SSL request), the client's first
		// packet: its capability flags are those the connection uses.
		s.handshaken = true
		if len(payload) < 4 {
			s.goBlind()
			return
		}
		caps := binary.LittleEndian.Uint32(payload)
		if caps&(mysqlClientSSL|mysqlClientCompress) != 0 {
			s.goBlind()
			return
		}
		s.deprecateEOF = caps&mysqlClientDeprecateEOF != 0
		return
	}
	if seq != 0 || len(payload) == 0 {
		return // a packet of the authentication, or a LOCAL INFILE's data
	}
	counting := s.p.counting.Load()
	s.state = ansNone
	switch payload[0] {
	case mysqlComQuit, mysqlComStmtClose, mysqlComSendLong:
		return
	case mysqlComQuery:
		s.state = ansHeader
	case mysqlComStmtExecute:
		if counting {
			s.p.stmts.Add(1)
		}
	}
	if counting {
		s.p.trips.Add(1)
	}
}

func (s *mysqlConnState) goBlind() {
	s.blind = true
	s.p.blind.Store(true)
}

// fromServer reads a packet the server sent.
func (s *mysqlConnState) fromServer(_ byte, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cont := s.serverPartial
	s.serverPartial = len(payload) == mysqlMaxPayload
	if s.blind || cont || len(payload) == 0 || s.state == ansNone {
		return
	}
	counting := s.p.counting.Load()
	done := func(status uint16) {
		if counting {
			s.p.stmts.Add(1)
		}
		if status&mysqlMoreResults != 0 {
			s.state = ansHeader
		} else {
			s.state = ansNone
		}
	}
	switch s.state {
	case ansHeader:
		switch payload[0] {
		case mysqlOK:
			affected, n := lenenc(payload[1:])
			_, m := lenenc(payload[1+n:])
			if counting {
				s.p.rows.Add(int64(affected))
			}
			done(status(payload[1+n+m:]))
		case mysqlERR:
			done(0)
		case 0xfb: // LOCAL INFILE request: the client sends a file, then an OK follows
		default:
			s.columns, _ = lenenc(payload)
			s.state = ansColumns
			if s.columns == 0 {
				s.state = ansRows
			}
		}
	case ansColumns:
		s.columns--
		if s.columns == 0 {
			s.state = ansRows
			if !s.deprecateEOF {
				s.state = ansColEOF
			}
		}
	case ansColEOF:
		s.state = ansRows
	case ansRows:
		switch {
		case payload[0] == mysqlERR:
			done(0)
		case payload[0] == mysqlEOF && len(payload) < mysqlMaxPayload:
			if s.deprecateEOF {
				// An OK packet with an 0xFE header.
				_, n := lenenc(payload[1:])
				_, m := lenenc(payload[1+n:])
				done(status(payload[1+n+m:]))
			} else if len(payload) >= 5 {
				done(binary.LittleEndian.Uint16(payload[3:5])) // after the warnings
			} else {
				done(0)
			}
		}
	}
}

// lenenc reads a length-encoded integer from the start of b and returns it
// with its size (a short b gives 0 and the size of b).
func lenenc(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	size := 1
	switch b[0] {
	case 0xfc:
		size = 3
	case 0xfd:
		size = 4
	case 0xfe:
		size = 9
	default:
		return uint64(b[0]), 1
	}
	if len(b) < size {
		return 0, len(b)
	}
	var v uint64
	for i := size - 1; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, size
}

// status reads the 2-byte status flags at the start of b, or 0.
func status(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

// mysqlPump copies packets from src to dst, calling seen with the sequence
// id and the payload of each before forwarding it.
func mysqlPump(dst, src net.Conn, seen func(seq byte, payload []byte)) {
	buf := make([]byte, 0, 64<<10)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		buf = slices.Grow(buf[:0], 4+n)[:4+n]
		copy(buf, hdr[:])
		if _, err := io.ReadFull(src, buf[4:]); err != nil {
			return
		}
		seen(hdr[3], buf[4:])
		if _, err := dst.Write(buf); err != nil {
			return
		}
	}
}
