package ping

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// ms formats d in milliseconds with three decimals, as ping(8) does.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// msValue is d in milliseconds, for JSON.
func msValue(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// ProbeLine is p as one line of text, without its newline:
//
//	seq=1 peer=127.0.0.1:10000 connect=0.213ms rtt=0.431ms
//	seq=2 peer=127.0.0.1:10000 timeout: read tcp ...: i/o timeout
//	seq=5 peer=127.0.0.1:7 rtt=0.102ms dup=4 late=2,3
//
// dup= and late= list the earlier probes whose answers came while this
// one waited (Probe.Duplicates, Probe.Late).
func ProbeLine(p Probe) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d", p.Seq)
	if p.Peer != "" {
		fmt.Fprintf(&b, " peer=%s", p.Peer)
	}
	if p.Connect > 0 {
		fmt.Fprintf(&b, " connect=%sms", ms(p.Connect))
	}
	if p.Err != nil {
		fmt.Fprintf(&b, " %s: %s", p.Kind, oneLine(p.Err.Error()))
	} else {
		fmt.Fprintf(&b, " rtt=%sms", ms(p.RTT))
	}
	appendSeqs(&b, "dup", p.Duplicates)
	appendSeqs(&b, "late", p.Late)
	return b.String()
}

// appendSeqs appends " key=1,2,3" to b, nothing for no seqs.
func appendSeqs(b *strings.Builder, key string, seqs []int) {
	for i, seq := range seqs {
		if i == 0 {
			fmt.Fprintf(b, " %s=%d", key, seq)
		} else {
			fmt.Fprintf(b, ",%d", seq)
		}
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// probeJSON is a Probe as --json prints it.
type probeJSON struct {
	Type      string   `json:"type"`
	Seq       int      `json:"seq"`
	Time      string   `json:"time"`
	Peer      string   `json:"peer,omitempty"`
	ConnectMS *float64 `json:"connect_ms,omitempty"`
	RTTMS     *float64 `json:"rtt_ms,omitempty"`
	Error     string   `json:"error,omitempty"`
	ErrorKind string   `json:"error_kind,omitempty"`
	Dup       []int    `json:"duplicates,omitempty"`
	Late      []int    `json:"late,omitempty"`
}

// WriteProbeJSON writes p to w as one JSON object on a line of its own.
func WriteProbeJSON(w io.Writer, p Probe) error {
	j := probeJSON{Type: "probe", Seq: p.Seq, Time: p.Time.UTC().Format(time.RFC3339Nano), Peer: p.Peer, Dup: p.Duplicates, Late: p.Late}
	if p.Connect > 0 {
		v := msValue(p.Connect)
		j.ConnectMS = &v
	}
	if p.Err != nil {
		j.Error, j.ErrorKind = p.Err.Error(), p.Kind
	} else {
		v := msValue(p.RTT)
		j.RTTMS = &v
	}
	return writeJSONLine(w, j)
}

// statsJSON is a Stats as --json prints it, in milliseconds.
type statsJSON struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	Avg   float64 `json:"avg_ms"`
	Max   float64 `json:"max_ms"`
	Mdev  float64 `json:"mdev_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

func (s Stats) json() *statsJSON {
	if s.Count == 0 {
		return nil
	}
	return &statsJSON{s.Count, msValue(s.Min), msValue(s.Avg), msValue(s.Max), msValue(s.Mdev), msValue(s.P50), msValue(s.P99)}
}

// WriteSummaryJSON writes s to w as one JSON object on a line of its own.
func WriteSummaryJSON(w io.Writer, s Summary) error {
	return writeJSONLine(w, struct {
		Type      string         `json:"type"`
		Addr      string         `json:"addr"`
		Sent      int            `json:"sent"`
		Received  int            `json:"received"`
		Loss      float64        `json:"loss_percent"`
		ElapsedMS float64        `json:"elapsed_ms"`
		RTT       *statsJSON     `json:"rtt,omitempty"`
		Connect   *statsJSON     `json:"connect,omitempty"`
		Errors    map[string]int `json:"errors,omitempty"`
		Dup       int            `json:"duplicates"`
		Late      int            `json:"late"`
		Cut       bool           `json:"deadline_cut,omitempty"`
	}{"summary", s.Addr, s.Sent, s.Received, s.Loss, msValue(s.Elapsed), s.RTT.json(), s.Connect.json(), s.Errors, s.Duplicates, s.Late, s.Cut})
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteSummary writes s to w as ping(8) ends:
//
//	--- tcp://127.0.0.1:10000 echoctl ping statistics ---
//	5 probes sent, 5 received, 0% loss, time 4004ms
//	rtt min/avg/max/mdev = 0.101/0.142/0.210/0.039 ms, p50 0.131 ms, p99 0.210 ms
//	connect min/avg/max/mdev = 0.080/0.099/0.120/0.014 ms, p50 0.097 ms, p99 0.120 ms
//	errors: timeout 1
func WriteSummary(w io.Writer, s Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s echoctl ping statistics ---\n", s.Addr)
	fmt.Fprintf(&b, "%d probes sent, %d received, ", s.Sent, s.Received)
	// As ping(8): "+N duplicates" when some came.
	if s.Duplicates > 0 {
		fmt.Fprintf(&b, "+%d duplicates, ", s.Duplicates)
	}
	if s.Late > 0 {
		fmt.Fprintf(&b, "+%d late, ", s.Late)
	}
	fmt.Fprintf(&b, "%s%% loss, time %dms\n", percent(s.Loss), s.Elapsed.Milliseconds())
	for _, st := range []struct {
		name string
		s    Stats
	}{{"rtt", s.RTT}, {"connect", s.Connect}} {
		if st.s.Count > 0 {
			fmt.Fprintf(&b, "%s min/avg/max/mdev = %s/%s/%s/%s ms, p50 %s ms, p99 %s ms\n",
				st.name, ms(st.s.Min), ms(st.s.Avg), ms(st.s.Max), ms(st.s.Mdev), ms(st.s.P50), ms(st.s.P99))
		}
	}
	if s.Cut {
		fmt.Fprintf(&b, "deadline: it came before the %d replies asked for\n", s.count)
	}
	if len(s.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Errors[k]))
		}
		fmt.Fprintf(&b, "errors: %s\n", strings.Join(parts, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// percent formats a loss percentage as ping does: whole numbers plainly,
// others with up to three decimals.
func percent(p float64) string {
	s := fmt.Sprintf("%.3f", p)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
