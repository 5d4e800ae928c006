// gorilla: a peer for the receive cases: Go with Debian's gorilla/websocket reads N
// messages from the bench server's /flood with NextReader, counting them and their bytes.
//   gorilla recv URL N [SIZE OP]
// Prints "RESULT msgs=N bytes=B secs=T" once the N-th message has arrived. Built offline
// by scripts/bench/run.sh (GO111MODULE=off GOPATH=/usr/share/gocode).
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "recv" {
		fmt.Fprintln(os.Stderr, "usage: gorilla recv URL N [SIZE OP]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorilla: N:", err)
		os.Exit(2)
	}
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 4 << 10}
	c, _, err := d.Dial(os.Args[2], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorilla: dial:", err)
		os.Exit(1)
	}
	c.SetReadLimit(1 << 30)
	buf := make([]byte, 64<<10)
	t0 := time.Now()
	got, bytes := 0, 0
	for got < n {
		_, r, err := c.NextReader()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gorilla: read:", err)
			os.Exit(1)
		}
		for {
			k, err := r.Read(buf)
			bytes += k
			if err == io.EOF {
				break
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "gorilla: read:", err)
				os.Exit(1)
			}
		}
		got++
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("RESULT msgs=%d bytes=%d secs=%.6f\n", got, bytes, secs)
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.Close()
}
