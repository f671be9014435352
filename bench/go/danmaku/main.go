// Command danmaku is the Go side of bench/run's danmaku workloads: the live-comment server of
// examples/danmaku.c written the way Go programs are (gorilla/websocket's chat example): a hub
// goroutine per room, and per connection a read pump and a write pump goroutine with a
// bounded queue (a buffered channel); a viewer whose queue is full is dropped with close code
// 1008. The write pump drains everything queued into a bufio.Writer and flushes once, one
// system call per burst, as gorc_ws_write_messages does. Go 1.19's standard library has no
// WebSocket, so a minimal RFC 6455 codec is written here: the handshake over http.Hijacker,
// masked client frames in, unmasked frames out, ping, pong and close; no extensions.
//
// The wire protocol is examples/danmaku.c's: GET /ws?room=R&name=N; a welcome
// {"type":"welcome","seq":S,"room":"R"}, then {"seq":S,"name":N,"text":T} per comment.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const (
	queueLen = 256
	maxText  = 512
)

type msg []byte

type viewer struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	send chan msg
	room *room
}

type post struct {
	body []byte // ,"name":"N","text":"T"}
}

type room struct {
	name    string
	join    chan *viewer
	leave   chan *viewer
	posts   chan post
	viewers map[*viewer]bool
	seq     uint64
}

var (
	roomsMu sync.Mutex
	rooms   = map[string]*room{}
)

func getRoom(name string) *room {
	roomsMu.Lock()
	defer roomsMu.Unlock()
	r := rooms[name]
	if r == nil {
		r = &room{name: name, join: make(chan *viewer), leave: make(chan *viewer),
			posts: make(chan post, 1024), viewers: map[*viewer]bool{}}
		rooms[name] = r
		go r.hub()
	}
	return r
}

func (r *room) hub() {
	for {
		select {
		case v := <-r.join:
			r.viewers[v] = true
			v.send <- msg(fmt.Sprintf(`{"type":"welcome","seq":%d,"room":"%s"}`, r.seq, r.name))
		case v := <-r.leave:
			if r.viewers[v] {
				delete(r.viewers, v)
				close(v.send)
			}
		case p := <-r.posts:
			r.seq++
			m := make(msg, 0, 32+len(p.body))
			m = append(m, `{"seq":`...)
			m = strconv.AppendUint(m, r.seq, 10)
			m = append(m, p.body...)
			for v := range r.viewers {
				select {
				case v.send <- m:
				default: // too slow: drop it
					delete(r.viewers, v)
					close(v.send)
					go func(v *viewer) {
						writeClose(v, 1008, "too slow: dropped")
						v.conn.Close()
					}(v)
				}
			}
		}
	}
}

// ---- a minimal RFC 6455 codec ----

func writeFrame(w *bufio.Writer, op byte, p []byte) error {
	var h [10]byte
	h[0] = 0x80 | op
	n := 2
	switch l := len(p); {
	case l < 126:
		h[1] = byte(l)
	case l <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(l))
		n = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(l))
		n = 10
	}
	if _, err := w.Write(h[:n]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

var closeMu sync.Mutex // writeClose may race with the write pump only on a dropped viewer

func writeClose(v *viewer, code int, reason string) {
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	closeMu.Lock()
	defer closeMu.Unlock()
	var b [2 + 125]byte
	b[0], b[1] = 0x88, byte(len(p))
	copy(b[2:], p)
	v.conn.Write(b[:2+len(p)])
}

var errProto = errors.New("websocket: protocol error")

// readMessage returns the next data message (control frames are handled on the way).
func readMessage(v *viewer) (byte, []byte, error) {
	var op0 byte
	var msgb []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(v.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, op, masked := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0
		if h[0]&0x70 != 0 || !masked {
			return 0, nil, errProto
		}
		n := uint64(h[1] & 0x7f)
		if n == 126 {
			var b [2]byte
			if _, err := io.ReadFull(v.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		} else if n == 127 {
			var b [8]byte
			if _, err := io.ReadFull(v.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > maxText || uint64(len(msgb))+n > maxText {
			return 0, nil, errProto
		}
		var key [4]byte
		if _, err := io.ReadFull(v.br, key[:]); err != nil {
			return 0, nil, err
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(v.br, p); err != nil {
			return 0, nil, err
		}
		for i := range p {
			p[i] ^= key[i&3]
		}
		switch op {
		case 8:
			return 8, p, nil
		case 9: // ping: answer through the write pump's lock
			closeMu.Lock()
			writeFrame(v.bw, 10, p)
			v.bw.Flush()
			closeMu.Unlock()
			continue
		case 10:
			continue
		case 0:
			if op0 == 0 {
				return 0, nil, errProto
			}
		default:
			op0 = op
		}
		msgb = append(msgb, p...)
		if fin {
			return op0, msgb, nil
		}
	}
}

func jsonEscape(b []byte, s []byte) []byte {
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func (v *viewer) writePump() {
	defer v.conn.Close()
	for m := range v.send {
		closeMu.Lock()
		err := writeFrame(v.bw, 1, m)
		for n := len(v.send); err == nil && n > 0; n-- { // the rest of the burst
			err = writeFrame(v.bw, 1, <-v.send)
		}
		if err == nil {
			err = v.bw.Flush()
		}
		closeMu.Unlock()
		if err != nil {
			return
		}
	}
}

func serveWS(w http.ResponseWriter, r *http.Request) {
	room, name := r.URL.Query().Get("room"), r.URL.Query().Get("name")
	if room == "" {
		http.Error(w, "room", 400)
		return
	}
	if name == "" {
		name = "anonymous"
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != "GET" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "not a websocket handshake", 400)
		return
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	brw.WriteString(base64.StdEncoding.EncodeToString(h[:]))
	brw.WriteString("\r\n\r\n")
	if brw.Flush() != nil {
		conn.Close()
		return
	}
	rm := getRoom(room)
	v := &viewer{conn: conn, br: brw.Reader, bw: brw.Writer, send: make(chan msg, queueLen), room: rm}
	go v.writePump()
	rm.join <- v
	nm := jsonEscape(nil, []byte(name))
	for { // the read pump
		op, p, err := readMessage(v)
		if err != nil || op == 8 {
			break
		}
		if op == 1 && len(p) > 0 {
			b := make([]byte, 0, 24+len(nm)+len(p))
			b = append(b, `,"name":"`...)
			b = append(b, nm...)
			b = append(b, `","text":"`...)
			b = jsonEscape(b, p)
			b = append(b, `"}`...)
			rm.posts <- post{body: b}
		}
	}
	rm.leave <- v
	writeClose(v, 1000, "")
	conn.Close()
}

func main() {
	addr := "127.0.0.1:8091"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("danmaku on http://%s/ (WebSocket at ws://%s/ws?room=R&name=N)\n", ln.Addr(), ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", serveWS)
	fmt.Fprintln(os.Stderr, http.Serve(ln, mux))
}
