package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Percentile is one point of a latency percentile curve.
type Percentile struct {
	// Percentile is in percent: 0 to 100.
	Percentile float64 `json:"percentile"`
	// Latency is the highest latency at or below Percentile, in
	// microseconds.
	Latency float64 `json:"us"`
	// Count is how many echoes were at or below Latency.
	Count int64 `json:"count"`
}

// hgrmTicks is how many steps the percentile curve takes each time it
// halves the distance to 100%: HdrHistogram's default for its percentile
// distribution.
const hgrmTicks = 5

// percentileCurve lists the percentiles of h, which holds nanoseconds, in
// microseconds, as WriteHgrm does.
func percentileCurve(h *hdrhistogram.Histogram) []Percentile {
	if h.TotalCount() == 0 {
		return nil
	}
	var curve []Percentile
	for _, b := range h.CumulativeDistributionWithTicks(hgrmTicks) {
		curve = append(curve, Percentile{Percentile: b.Quantile, Latency: float64(b.ValueAt) / float64(time.Microsecond), Count: b.Count})
	}
	return curve
}

// WriteHgrm writes the latencies of the measured window in HdrHistogram's
// percentile distribution format (an .hgrm file, which HdrHistogram's
// plotter and HistogramLogAnalyzer read): a heading, one line per
// percentile with the latency in milliseconds, the percentile as a
// fraction, the count at or below it and 1/(1-percentile), then a footer
// with the mean, standard deviation, maximum and count. The columns are
// those of HdrHistogram's Java outputPercentileDistribution, with six
// decimals to the millisecond (a nanosecond) rather than three, so that
// loopback latencies of some microseconds keep their three significant
// digits. Only a Result from Run has the latencies to write.
func (res *Result) WriteHgrm(w io.Writer) error {
	if res.hist == nil {
		return errors.New("bench: the result has no latency histogram (only one from Run has)")
	}
	return writeHgrm(w, res.hist)
}

// writeHgrm writes h, which holds nanoseconds, as WriteHgrm says.
func writeHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	const ms = float64(time.Millisecond)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	if h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(hgrmTicks) {
			p := b.Quantile / 100
			if p >= 1 {
				fmt.Fprintf(bw, "%12.6f %2.12f %10d\n", float64(b.ValueAt)/ms, p, b.Count)
				continue
			}
			fmt.Fprintf(bw, "%12.6f %2.12f %10d %14.2f\n", float64(b.ValueAt)/ms, p, b.Count, 1/(1-p))
		}
	}
	fmt.Fprintf(bw, "#[Mean    = %12.6f, StdDeviation   = %12.6f]\n", h.Mean()/ms, h.StdDev()/ms)
	fmt.Fprintf(bw, "#[Max     = %12.6f, Total count    = %12d]\n", float64(h.Max())/ms, h.TotalCount())
	buckets, subBuckets := hgrmBuckets(h)
	fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: writing the latency distribution: %w", err)
	}
	return nil
}

// hgrmBuckets returns h's bucket and sub-bucket counts, which the footer
// gives and hdrhistogram-go does not export: HdrHistogram's own sizing,
// from the counts array's length.
func hgrmBuckets(h *hdrhistogram.Histogram) (buckets, subBuckets int) {
	subBuckets = 1 << int(math.Ceil(math.Log2(2*math.Pow10(int(h.SignificantFigures())))))
	buckets = len(h.Export().Counts)/(subBuckets/2) - 1
	return buckets, subBuckets
}
