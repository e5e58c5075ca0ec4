package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The charts are drawn here as inline SVG, so they work offline with no
// script and no library, and within the console's Content-Security-Policy
// (no inline style: colours are SVG attributes). Every bar carries its
// value as text and a <title>, and every chart has its axis labelled, so
// a chart can be read without hovering and by a screen reader.

// Chart colours, one per series.
const (
	colReceived  = "#4a78b5"
	colDissuaded = "#2e8b57"
	colClosed    = "#8a6bb8"
	colDefrauded = "#c0392b"
	colUnreached = "#e0a030"
	colOther     = "#9aa5b1"
	colPending   = "#d5dbe1"
)

// svg collects the elements of one chart.
type svg struct{ b strings.Builder }

func (s *svg) add(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

// text adds a label, its content escaped.
func (s *svg) text(x, y float64, anchor, class, content string) {
	s.add(`<text x="%.1f" y="%.1f" text-anchor="%s" class="%s">%s</text>`, x, y, anchor, class, html.EscapeString(content))
}

// rect adds a bar with its tooltip.
func (s *svg) rect(x, y, w, h float64, fill, title string) {
	s.add(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`, x, y, w, max(h, 0), fill, html.EscapeString(title))
}

func (s *svg) html(class string, width, height int, label string) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg class="chart %s" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">%s</svg>`,
		class, width, height, html.EscapeString(label), s.b.String()))
}

// legend draws the series' names in a row at the top left.
func (s *svg) legend(x, y float64, items ...[2]string) {
	for _, it := range items {
		s.add(`<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`, x, y-9, it[1])
		s.text(x+14, y, "start", "legend", it[0])
		x += 14 + float64(len([]rune(it[0])))*13 + 16
	}
}

// niceTop rounds a maximum up to a round axis top, and gives the step of
// its ticks: 1, 2 or 5 times a power of ten, about four ticks.
func niceTop(maxV int64) (top, step int64) {
	if maxV <= 0 {
		return 4, 1
	}
	raw := float64(maxV) / 4
	pow := int64(1)
	for float64(pow*10) <= raw {
		pow *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if float64(m*pow) >= raw {
			step = m * pow
			break
		}
	}
	top = (maxV + step - 1) / step * step
	return top, step
}

// dailyChart draws received, dissuaded and closed for each day of the
// period, days with nothing included, with a value axis and each bar's
// value.
func dailyChart(s *syncproto.StatsResponse, from, to time.Time) template.HTML {
	byDay := map[string]syncproto.Figures{}
	for _, d := range s.Daily {
		byDay[d.Day] = d.Figures
	}
	var days []time.Time
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	var top int64
	for _, d := range days {
		top = max(top, byDay[d.Format(time.DateOnly)].Received)
	}
	top, step := niceTop(top)
	const left, right, topPad, plotH = 48.0, 10.0, 30.0, 180.0
	slot := max(900/float64(len(days)), 24)
	width := left + right + slot*float64(len(days))
	height := topPad + plotH + 40
	var g svg
	g.legend(left, 14, [2]string{"接收", colReceived}, [2]string{"劝阻成功", colDissuaded}, [2]string{"办结", colClosed})
	y := func(v int64) float64 { return topPad + plotH - float64(v)/float64(top)*plotH }
	// The value axis: a line, ticks and their labels.
	g.add(`<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555"/>`, left, topPad, left, topPad+plotH)
	g.add(`<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555"/>`, left, topPad+plotH, width-right, topPad+plotH)
	for v := int64(0); v <= top; v += step {
		g.add(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e6ea"/>`, left, y(v), width-right, y(v))
		g.text(left-6, y(v)+4, "end", "tick", dashCount(v))
	}
	bw := (slot - 8) / 3
	showValues := len(days) <= 31
	labelEvery := max(len(days)/15, 1)
	for i, d := range days {
		f := byDay[d.Format(time.DateOnly)]
		x := left + float64(i)*slot + 4
		day := d.Format("01-02")
		for j, sr := range []struct {
			name string
			v    int64
			col  string
		}{{"接收", f.Received, colReceived}, {"劝阻成功", f.Dissuaded, colDissuaded}, {"办结", f.Closed, colClosed}} {
			bx := x + float64(j)*bw
			g.rect(bx, y(sr.v), bw-1, topPad+plotH-y(sr.v), sr.col, fmt.Sprintf("%s %s %d", day, sr.name, sr.v))
			if showValues && sr.v > 0 {
				g.text(bx+bw/2, y(sr.v)-3, "middle", "value", dashCount(sr.v))
			}
		}
		if i%labelEvery == 0 {
			g.text(x+slot/2-4, topPad+plotH+16, "middle", "tick", day)
		}
	}
	return g.html("daily", int(width), int(height), fmt.Sprintf("%s 至 %s 每日接收、劝阻成功与办结", from.Format(time.DateOnly), to.Format(time.DateOnly)))
}

// outcomeSeries are the parts of a type's bar, in order; what is left of
// its received has no outcome yet.
var outcomeSeries = []struct {
	name string
	col  string
	of   func(f syncproto.Figures) int64
}{
	{"劝阻成功", colDissuaded, func(f syncproto.Figures) int64 { return f.Dissuaded }},
	{"已被骗", colDefrauded, func(f syncproto.Figures) int64 { return f.AlreadyDefrauded }},
	{"未联系上", colUnreached, func(f syncproto.Figures) int64 { return f.Unreachable }},
	{"非预警对象或拒绝沟通", colOther, func(f syncproto.Figures) int64 { return f.NotTarget + f.Refused }},
}

// typeChart draws, for each fraud type, a bar of its received warnings
// split by outcome, with the count received at its end.
func typeChart(types []syncproto.TypeFigures) template.HTML {
	var g svg
	// plotW leaves the right 230 units for the count at the end of the longest bar.
	const left, barH, gap, topPad, plotW = 150.0, 22.0, 8.0, 30.0, 620.0
	if len(types) == 0 {
		g.text(10, 30, "start", "empty", "这段时间没有预警。")
		return g.html("types", 900, 50, "按诈骗类型的劝阻结果")
	}
	var top int64
	for _, t := range types {
		top = max(top, t.Figures.Received)
	}
	g.legend(left, 14, [2]string{"劝阻成功", colDissuaded}, [2]string{"已被骗", colDefrauded}, [2]string{"未联系上", colUnreached},
		[2]string{"其他结果", colOther}, [2]string{"尚无结果", colPending})
	g.add(`<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555"/>`, left, topPad-4, left, topPad+float64(len(types))*(barH+gap))
	scale := plotW / float64(top)
	for i, t := range types {
		f := t.Figures
		y := topPad + float64(i)*(barH+gap)
		g.text(left-8, y+barH/2+5, "end", "tick", t.FraudType)
		x := left
		var done int64
		for _, sr := range outcomeSeries {
			v := sr.of(f)
			done += v
			g.rect(x, y, float64(v)*scale, barH, sr.col, fmt.Sprintf("%s %s %d", t.FraudType, sr.name, v))
			x += float64(v) * scale
		}
		pending := f.Received - done
		g.rect(x, y, float64(pending)*scale, barH, colPending, fmt.Sprintf("%s 尚无结果 %d", t.FraudType, pending))
		g.text(left+float64(f.Received)*scale+6, y+barH/2+5, "start", "value",
			fmt.Sprintf("%s（劝阻成功 %s）", dashCount(f.Received), dashCount(f.Dissuaded)))
	}
	h := int(topPad + float64(len(types))*(barH+gap) + 10)
	return g.html("types", 1000, h, "按诈骗类型的劝阻结果")
}

// rankChart ranks the child units by the table's sort column, one bar
// each with its value.
func rankChart(children []syncproto.UnitFigures, sortBy string) template.HTML {
	var g svg
	const left, barH, gap, topPad, plotW = 150.0, 20.0, 6.0, 24.0, 650.0
	names := map[string]string{"received": "接收", "dissuaded": "劝阻成功", "overdue": "逾期", "closed": "办结", "rate": "办结率", "contact": "首次接触中位用时（分钟）"}
	title := "下级单位排名：" + names[sortBy]
	if len(children) == 0 {
		g.text(10, 30, "start", "empty", "没有下级单位。")
		return g.html("rank", 900, 50, title)
	}
	key := childColumns[sortBy]
	var top float64
	for _, ch := range children {
		top = max(top, key(ch.Figures))
	}
	if top == 0 {
		top = 1
	}
	g.text(left, 14, "start", "legend", title)
	g.add(`<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555"/>`, left, topPad-4, left, topPad+float64(len(children))*(barH+gap))
	for i, ch := range children {
		v := key(ch.Figures)
		y := topPad + float64(i)*(barH+gap)
		label := dashCount(int64(v))
		if sortBy == "rate" {
			label = fmt.Sprintf("%.1f%%", v*100)
		}
		g.text(left-8, y+barH/2+5, "end", "tick", fmt.Sprintf("%d. %s", i+1, ch.Name))
		g.rect(left, y, v/top*plotW, barH, colReceived, ch.Name+" "+label)
		g.text(left+v/top*plotW+6, y+barH/2+5, "start", "value", label)
	}
	return g.html("rank", 950, int(topPad+float64(len(children))*(barH+gap)+10), title)
}
