package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/echoctl/echoctl/pkg/echo"
)

// summarize reads the percentiles off h, which holds nanoseconds, in
// microseconds.
func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / float64(time.Microsecond),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}

// describeMismatch turns the first mismatch into its Result form.
func describeMismatch(mm *MismatchError) *Mismatch {
	m := &Mismatch{Conn: mm.Conn, Offset: mm.Err.Offset, Message: mm.Error()}
	if !mm.Err.Extra {
		m.Expected = echo.Quote([]byte{mm.Err.Sent})
	}
	if !mm.Err.Short {
		m.Got = echo.Quote([]byte{mm.Err.Received})
	}
	return m
}
