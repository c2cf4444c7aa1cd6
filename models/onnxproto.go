package models

import (
	"errors"
	"fmt"
	"io"
)

// pbReader reads the protobuf wire format of an ONNX file through a window
// over an io.ReaderAt, so that the large fields (the weights) are skipped
// without being read. Every length is checked against the end of the
// message that holds it before anything is allocated.
type pbReader struct {
	r      io.ReaderAt
	off    int64 // position of the next byte
	end    int64 // end of the message being read
	buf    []byte
	bufOff int64 // position of buf[0]
	bufLen int   // valid bytes in buf
}

// pbWindow is the size of the reader's window: the small fields of a
// graph's inputs and outputs are read in one go.
const pbWindow = 64 << 10

// errTruncated is returned (wrapped) when a field runs past its message.
var errTruncated = errors.New("truncated or malformed protobuf")

func newPBReader(r io.ReaderAt, size int64) *pbReader {
	return &pbReader{r: r, end: size, buf: make([]byte, pbWindow)}
}

// more reports whether the current message has bytes left.
func (p *pbReader) more() bool { return p.off < p.end }

// byte reads one byte.
func (p *pbReader) byte() (byte, error) {
	if p.off >= p.end {
		return 0, errTruncated
	}
	if p.off < p.bufOff || p.off >= p.bufOff+int64(p.bufLen) {
		n, err := p.r.ReadAt(p.buf, p.off)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return 0, errTruncated
			}
			return 0, err
		}
		p.bufOff, p.bufLen = p.off, n
	}
	b := p.buf[p.off-p.bufOff]
	p.off++
	return b, nil
}

// varint reads a base-128 varint.
func (p *pbReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := p.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: varint longer than 10 bytes", errTruncated)
}

// key reads a field's tag.
func (p *pbReader) key() (field uint64, wire uint64, err error) {
	k, err := p.varint()
	if err != nil {
		return 0, 0, err
	}
	return k >> 3, k & 7, nil
}

// length reads the length of a length-delimited field and checks that it
// fits in the current message.
func (p *pbReader) length() (int64, error) {
	n, err := p.varint()
	if err != nil {
		return 0, err
	}
	if n > uint64(p.end-p.off) {
		return 0, fmt.Errorf("%w: a field of %d bytes runs past its message", errTruncated, n)
	}
	return int64(n), nil
}

// skip skips the value of a field of wire type wire.
func (p *pbReader) skip(wire uint64) error {
	var n int64
	switch wire {
	case 0:
		_, err := p.varint()
		return err
	case 1:
		n = 8
	case 2:
		var err error
		if n, err = p.length(); err != nil {
			return err
		}
	case 5:
		n = 4
	default:
		return fmt.Errorf("%w: wire type %d", errTruncated, wire)
	}
	if n > p.end-p.off {
		return errTruncated
	}
	p.off += n
	return nil
}

// bytes reads a length-delimited value of at most limit bytes; what names
// it in the error.
func (p *pbReader) bytes(limit int64, what string) ([]byte, error) {
	n, err := p.length()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the limit of %d", what, n, limit)
	}
	out := make([]byte, n)
	if n <= int64(p.bufLen) && p.off >= p.bufOff && p.off+n <= p.bufOff+int64(p.bufLen) {
		copy(out, p.buf[p.off-p.bufOff:])
	} else if m, err := p.r.ReadAt(out, p.off); int64(m) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = errTruncated
		}
		return nil, err
	}
	p.off += n
	return out, nil
}

// message reads a length-delimited embedded message: fn is called for each
// of its fields (its tag read) until the message ends.
func (p *pbReader) message(fn func(field, wire uint64) error) error {
	n, err := p.length()
	if err != nil {
		return err
	}
	return p.fields(n, fn)
}

// fields calls fn for each field of the n bytes from the reader's position
// (a message whose length was read).
func (p *pbReader) fields(n int64, fn func(field, wire uint64) error) error {
	outer := p.end
	p.end = p.off + n
	for p.more() {
		f, w, err := p.key()
		if err != nil {
			return err
		}
		if err := fn(f, w); err != nil {
			return err
		}
	}
	p.end = outer
	return nil
}

// Field numbers of onnx.proto (onnx 1.x) that the reader uses.
const (
	fieldModelGraph        = 7  // ModelProto.graph
	fieldModelMetadata     = 14 // ModelProto.metadata_props
	fieldEntryKey          = 1  // StringStringEntryProto.key
	fieldEntryValue        = 2  // StringStringEntryProto.value
	fieldGraphInput        = 11 // GraphProto.input
	fieldGraphOutput       = 12 // GraphProto.output
	fieldValueName         = 1  // ValueInfoProto.name
	fieldValueType         = 2  // ValueInfoProto.type
	fieldTypeTensor        = 1  // TypeProto.tensor_type
	fieldTensorElemType    = 1  // TypeProto.Tensor.elem_type
	fieldTensorShape       = 2  // TypeProto.Tensor.shape
	fieldShapeDim          = 1  // TensorShapeProto.dim
	fieldDimValue          = 1  // TensorShapeProto.Dimension.dim_value
	wireVarint, wireBytes  = 0, 2
	maxValueInfoBytes      = 1 << 20 // one graph input or output's description
	maxGraphValues         = 1 << 16 // inputs plus outputs of a graph
	maxTensorRank          = 64
	maxGraphValueNameBytes = 1 << 12
)

// onnxHeader is what readONNXHeader reads of an ONNX file: the main
// graph's inputs and outputs and the model's metadata_props.
type onnxHeader struct {
	inputs, outputs []TensorInfo
	metadata        map[string]string
	hasGraph        bool
}

// readONNXHeader reads the graph's inputs and outputs and the metadata of
// the ONNX model in r (size bytes), skipping everything else. Metadata
// values are limited to MaxMetadataBytes each, MaxMetadataTotalBytes in
// all and MaxMetadataEntries entries.
func readONNXHeader(r io.ReaderAt, size int64) (*onnxHeader, error) {
	p := newPBReader(r, size)
	h := &onnxHeader{metadata: map[string]string{}}
	total := int64(0)
	for p.more() {
		f, w, err := p.key()
		if err != nil {
			return nil, err
		}
		switch {
		case f == fieldModelGraph && w == wireBytes:
			if h.hasGraph {
				return nil, errors.New("the model has two graphs")
			}
			h.hasGraph = true
			if err := p.message(func(f, w uint64) error { return h.graphField(p, f, w) }); err != nil {
				return nil, err
			}
		case f == fieldModelMetadata && w == wireBytes:
			var key, value []byte
			var haveKey bool
			err := p.message(func(f, w uint64) error {
				switch {
				case f == fieldEntryKey && w == wireBytes:
					var err error
					key, err = p.bytes(maxGraphValueNameBytes, "a metadata key")
					haveKey = true
					return err
				case f == fieldEntryValue && w == wireBytes:
					var err error
					value, err = p.bytes(MaxMetadataBytes, "a metadata value (models.MaxMetadataBytes)")
					return err
				}
				return p.skip(w)
			})
			if err != nil {
				return nil, err
			}
			if !haveKey {
				return nil, errors.New("a metadata entry has no key")
			}
			if _, dup := h.metadata[string(key)]; dup {
				return nil, fmt.Errorf("metadata key %q appears twice", key)
			}
			if len(h.metadata) >= MaxMetadataEntries {
				return nil, fmt.Errorf("more than %d metadata entries (models.MaxMetadataEntries)", MaxMetadataEntries)
			}
			if total += int64(len(value)); total > MaxMetadataTotalBytes {
				return nil, fmt.Errorf("the metadata holds more than %d bytes (models.MaxMetadataTotalBytes)", MaxMetadataTotalBytes)
			}
			h.metadata[string(key)] = string(value)
		default:
			if err := p.skip(w); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// graphField reads one field of the main graph: inputs and outputs are
// kept, the rest (nodes, weights) skipped.
func (h *onnxHeader) graphField(p *pbReader, f, w uint64) error {
	if w != wireBytes || (f != fieldGraphInput && f != fieldGraphOutput) {
		return p.skip(w)
	}
	if len(h.inputs)+len(h.outputs) >= maxGraphValues {
		return fmt.Errorf("the graph has more than %d inputs and outputs", maxGraphValues)
	}
	t, err := readValueInfo(p)
	if err != nil {
		return err
	}
	if f == fieldGraphInput {
		h.inputs = append(h.inputs, t)
	} else {
		h.outputs = append(h.outputs, t)
	}
	return nil
}

// readValueInfo reads a ValueInfoProto: its name, and for a tensor its
// element type and shape (-1 for open axes; ElemType 0 for a value that is
// not a tensor, Dims nil for a tensor of unknown rank).
func readValueInfo(p *pbReader) (TensorInfo, error) {
	var t TensorInfo
	n, err := p.length()
	if err != nil {
		return t, err
	}
	if n > maxValueInfoBytes {
		return t, fmt.Errorf("a graph input or output is described in %d bytes, over the limit of %d", n, maxValueInfoBytes)
	}
	err = p.fields(n, func(f, w uint64) error {
		switch {
		case f == fieldValueName && w == wireBytes:
			name, err := p.bytes(maxGraphValueNameBytes, "a graph input or output name")
			t.Name = string(name)
			return err
		case f == fieldValueType && w == wireBytes:
			return p.message(func(f, w uint64) error {
				if f != fieldTypeTensor || w != wireBytes {
					return p.skip(w)
				}
				return p.message(func(f, w uint64) error {
					switch {
					case f == fieldTensorElemType && w == wireVarint:
						v, err := p.varint()
						t.ElemType = int32(v)
						return err
					case f == fieldTensorShape && w == wireBytes:
						t.Dims = []int64{}
						return p.message(func(f, w uint64) error {
							if f != fieldShapeDim || w != wireBytes {
								return p.skip(w)
							}
							if len(t.Dims) >= maxTensorRank {
								return fmt.Errorf("a tensor of more than %d axes", maxTensorRank)
							}
							d := int64(-1)
							err := p.message(func(f, w uint64) error {
								if f == fieldDimValue && w == wireVarint {
									v, err := p.varint()
									if int64(v) >= 0 {
										d = int64(v)
									}
									return err
								}
								return p.skip(w)
							})
							t.Dims = append(t.Dims, d)
							return err
						})
					}
					return p.skip(w)
				})
			})
		}
		return p.skip(w)
	})
	return t, err
}
