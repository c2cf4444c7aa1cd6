package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// lineReader reads stdin a line at a time, with no line held in memory
// past max bytes: a longer line is read to its end, counted and reported
// (bad), never buffered whole.
type lineReader struct {
	r    *bufio.Reader
	max  int
	line int   // number of the last line read, from 1
	bad  error // why the last line cannot be an input, or nil
	buf  []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64*1024), max: max}
}

// errLineTooLong and errLineNotUTF8 say why a line was skipped.
var (
	errLineTooLong = errors.New("line over max_input_bytes")
	errLineNotUTF8 = errors.New("line is not valid utf-8")
)

// next returns the next line without its "\n" (or "\r\n") and its number;
// io.EOF after the last. When lr.bad is set the line is not an input (its
// text is then cut to max bytes).
func (lr *lineReader) next() (string, int, error) {
	lr.buf, lr.bad = lr.buf[:0], nil
	size := 0 // bytes of the line, its "\n" excluded
	var last byte
	for {
		chunk, err := lr.r.ReadSlice('\n')
		ended := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if ended {
			chunk = chunk[:len(chunk)-1]
		}
		if len(chunk) > 0 {
			last = chunk[len(chunk)-1]
		}
		size += len(chunk)
		if room := lr.max + 1 - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && size == 0 && !ended {
			return "", lr.line, io.EOF
		}
		if err != nil && err != io.EOF {
			return "", lr.line, err
		}
		break
	}
	lr.line++
	if last == '\r' {
		size--
		if len(lr.buf) > size {
			lr.buf = lr.buf[:size]
		}
	}
	if size > lr.max {
		lr.bad = fmt.Errorf("%w: %d bytes, over the limit max_input_bytes = %d; split the line or raise the limit with -max-input-bytes (S2S_MAX_INPUT_BYTES)", errLineTooLong, size, lr.max)
		return string(lr.buf[:min(len(lr.buf), lr.max)]), lr.line, nil
	}
	line := string(lr.buf)
	if !utf8.ValidString(line) {
		lr.bad = fmt.Errorf("%w; convert the input to utf-8", errLineNotUTF8)
	}
	return line, lr.line, nil
}
