// Draws the charts of an echoctl bench report with dygraphs, from the JSON
// in #report-data. Each chart's element gets data-points, the number of
// points drawn, once drawn; the body gets data-charts, the number of charts
// drawn, and data-error if anything failed: what the browser test reads.
(function () {
  "use strict";
  window.addEventListener("error", function (e) {
    document.body.setAttribute("data-error", String(e.message));
  });
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = 0;

  // percentLabel writes x = 1/(1-p) as the percentile p.
  function percentLabel(x) {
    var p = 100 * (1 - 1 / x);
    if (p <= 0) return "0%";
    var digits = Math.max(0, Math.ceil(-Math.log10(100 - p)) + 1);
    var text = p.toFixed(Math.min(digits, 6));
    if (text.indexOf(".") >= 0) text = text.replace(/\.?0+$/, "");
    return text + "%";
  }

  // percentTicks puts a tick at 0%, 50%, 90%, 99%, 99.9%, ...
  function percentTicks(min, max) {
    var ticks = [];
    [1, 2].forEach(function (v) { if (v >= min && v <= max) ticks.push({v: v, label: percentLabel(v)}); });
    for (var v = 10; v <= max * 1.0001; v *= 10) {
      if (v >= min) ticks.push({v: v, label: percentLabel(v)});
    }
    return ticks;
  }

  // rows merges the series' points ([x, y] each) into dygraphs' rows:
  // one per x, with null where a series has no point.
  function rows(pointLists) {
    var byX = new Map();
    pointLists.forEach(function (points, i) {
      points.forEach(function (p) {
        var row = byX.get(p[0]);
        if (!row) {
          row = [p[0]].concat(pointLists.map(function () { return null; }));
          byX.set(p[0], row);
        }
        row[i + 1] = p[1];
      });
    });
    return Array.from(byX.values()).sort(function (a, b) { return a[0] - b[0]; });
  }

  function draw(el, xlabel, ylabel, labels, pointLists, extra) {
    var n = pointLists.reduce(function (sum, p) { return sum + p.length; }, 0);
    if (n === 0) {
      el.className += " empty";
      el.style.height = "auto";
      el.textContent = "no data";
      el.setAttribute("data-points", "0");
      return;
    }
    // The legend goes under the chart, not over its lines.
    var legend = document.createElement("div");
    legend.className = "legend";
    el.parentNode.insertBefore(legend, el.nextSibling);
    var opts = {
      labels: [xlabel].concat(labels),
      xlabel: xlabel,
      ylabel: ylabel,
      legend: "always",
      labelsDiv: legend,
      connectSeparatedPoints: true,
      drawPoints: true,
      pointSize: 2,
      strokeWidth: 1.5,
      includeZero: true,
      drawCallback: function (g, initial) {
        if (initial) {
          el.setAttribute("data-points", String(n));
          drawn++;
          document.body.setAttribute("data-charts", String(drawn));
        }
      }
    };
    var data = rows(pointLists);
    if (data.length === 1) {
      // One second (a run of a second or less): a dot alone at the edge
      // of a degenerate axis cannot be seen; centre it, and make it big.
      var x = data[0][0];
      opts.dateWindow = [x - 1, x + 1];
      opts.pointSize = 5;
    }
    for (var k in extra) opts[k] = extra[k];
    opts.axes = opts.axes || {};
    opts.axes.y = {axisLabelWidth: 60};
    if (xlabel === "second") {
      opts.axes.x = {axisLabelFormatter: function (v) { return Number.isInteger(v) ? String(v) : ""; }};
    }
    new Dygraph(el, data, opts);
  }

  data.sections.forEach(function (s, i) {
    var names = s.series.map(function (r) { return r.name; });
    var pick = function (f) {
      return s.series.map(function (r) { return r.seconds.map(function (p) { return [p.second, f(p)]; }); });
    };
    draw(document.getElementById("throughput-" + i), "second", s.unit, names, pick(function (p) { return p.throughput; }), {});
    draw(document.getElementById("errors-" + i), "second", "errors", names, pick(function (p) { return p.errors; }), {});
    var latNames = [], latPoints = [];
    s.series.forEach(function (r) {
      latNames.push(r.name + " p50", r.name + " p99");
      latPoints.push(r.seconds.map(function (p) { return [p.second, p.p50]; }));
      latPoints.push(r.seconds.map(function (p) { return [p.second, p.p99]; }));
    });
    draw(document.getElementById("latency-" + i), "second", "µs", latNames, latPoints, {});
    draw(document.getElementById("percentiles-" + i), "percentile", "µs", names,
      s.series.map(function (r) { return r.curve; }), {
        axes: {x: {logscale: true, ticker: percentTicks, valueFormatter: percentLabel}}
      });
  });
})();
