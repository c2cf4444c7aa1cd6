package runtime

import (
	ort "github.com/yalue/onnxruntime_go"
)

// minCacheTokens is the number of positions the self-attention cache holds
// before it first grows.
const minCacheTokens = 32

// header makes a tensor over the first elements of buf that shape covers.
// The tensor reads and writes buf; buf must outlive it.
func header[T ort.TensorData](buf []T, shape ...int64) (*ort.Tensor[T], error) {
	return ort.NewTensor(ort.Shape(shape), buf)
}

// release destroys *t when set and clears it.
func release[T ort.TensorData](t **ort.Tensor[T]) {
	if *t != nil {
		(*t).Destroy()
		*t = nil
	}
}

// releaseAll destroys and clears each tensor of ts.
func releaseAll[T ort.TensorData](ts []*ort.Tensor[T]) {
	for i := range ts {
		release(&ts[i])
	}
}

// grow returns buf when it holds n elements, else a new buffer of at least
// n elements (twice the old size when that is more). The first keep
// elements are copied over.
func grow[T any](buf []T, n, keep int) []T {
	if len(buf) >= n {
		return buf
	}
	size := max(n, 2*len(buf))
	out := make([]T, size)
	copy(out, buf[:min(keep, len(buf))])
	return out
}

// reuse returns buf when it holds n elements, else a new buffer of n.
func reuse[T any](buf []T, n int) []T {
	if len(buf) >= n {
		return buf
	}
	return make([]T, n)
}

// growTo is grow without the copy, capped: a buffer of at least n
// elements, doubling the old size when that is more but not past limit
// (limit <= 0: no cap). The self-attention cache grows with it, capped at
// what the search can still need, so that its last growth does not double
// it for a few positions.
func growTo[T any](buf []T, n, limit int) []T {
	if len(buf) >= n {
		return buf
	}
	size := 2 * len(buf)
	if limit > 0 {
		size = min(size, limit)
	}
	return make([]T, max(n, size))
}

// gatherRows makes row i of the result a copy of row src[i] of buf, whose
// rows are rowLen elements long. It works in place when the order allows
// (rows only move to lower indexes, or only to higher ones within buf's
// length) and otherwise returns a new buffer.
func gatherRows[T any](buf []T, src []int, rowLen int) []T {
	n := len(src)
	down, up := true, true
	for i, s := range src {
		if s < i {
			down = false
		}
		if s > i {
			up = false
		}
	}
	switch {
	case down: // rows move to lower indexes: copy front to back
		for i, s := range src {
			if s != i {
				copy(buf[i*rowLen:(i+1)*rowLen], buf[s*rowLen:(s+1)*rowLen])
			}
		}
		return buf
	case up && len(buf) >= n*rowLen: // rows move to higher indexes: back to front
		for i := n - 1; i >= 0; i-- {
			if s := src[i]; s != i {
				copy(buf[i*rowLen:(i+1)*rowLen], buf[s*rowLen:(s+1)*rowLen])
			}
		}
		return buf
	}
	out := make([]T, n*rowLen)
	gatherInto(out, buf, src, rowLen)
	return out
}

// gatherInto makes row i of dst a copy of row src[i] of from.
func gatherInto[T any](dst, from []T, src []int, rowLen int) {
	for i, s := range src {
		copy(dst[i*rowLen:(i+1)*rowLen], from[s*rowLen:(s+1)*rowLen])
	}
}

// inPlacePlan is how gatherSaved applies a row order to a buffer in place:
// the rows that change, and those of them that other changing rows read
// (saved to scratch first). A beam step moves a few rows of each input, so
// it copies far fewer rows than a gather into another buffer, which copies
// every row.
type inPlacePlan struct {
	changed []int // rows i < n with src[i] != i
	saved   []int // rows that are both changed and read by a changed row, in order
	slot    []int // per row: its index in saved, or -1
}

// plan fills p for src over rows current rows and reports whether copying
// in place moves fewer rows than a full gather (len(src) rows).
func (p *inPlacePlan) plan(src []int, rows int) bool {
	n := len(src)
	if n > rows {
		return false // rows grow: the buffer may be too short
	}
	p.changed, p.saved = p.changed[:0], p.saved[:0]
	p.slot = grow(p.slot[:0], rows, 0)[:rows]
	for r := range p.slot {
		p.slot[r] = -1
	}
	for i, s := range src {
		if s != i {
			p.changed = append(p.changed, i)
		}
	}
	for _, i := range p.changed {
		s := src[i]
		if s < n && src[s] != s && p.slot[s] < 0 {
			p.slot[s] = len(p.saved)
			p.saved = append(p.saved, s)
		}
	}
	return len(p.changed)+len(p.saved) < n
}

// gatherSaved makes row i of buf a copy of the old row src[i], in place,
// following p (made by plan for src); scratch holds the saved rows and is
// returned, grown when needed.
func gatherSaved[T any](buf, scratch []T, src []int, rowLen int, p *inPlacePlan) []T {
	scratch = grow(scratch, len(p.saved)*rowLen, 0)
	for k, r := range p.saved {
		copy(scratch[k*rowLen:(k+1)*rowLen], buf[r*rowLen:(r+1)*rowLen])
	}
	for _, i := range p.changed {
		s := src[i]
		from := buf[s*rowLen : (s+1)*rowLen]
		if k := p.slot[s]; k >= 0 {
			from = scratch[k*rowLen : (k+1)*rowLen]
		}
		copy(buf[i*rowLen:(i+1)*rowLen], from)
	}
	return scratch
}
