"""The report page's own script, inlined into the page (:mod:`caviar.report.page`).

The script only draws: it reads the study's JSON (:mod:`caviar.report.page_data`,
:mod:`caviar.report.page_tables`) and hands each figure's points and axes to plotly.js, and
builds the tables, sortable and filterable, in plain JavaScript. ``caviarReport.show(data)``
draws the page again from fresh data (the live dashboard calls it, :mod:`caviar.dashboard`),
keeping the filter's words and the trials a reader added to the curves; a trial chosen (a row
or a point clicked) is announced as a ``caviar-trial`` event on the document, ``detail``
``{number}``. A page whose data is ``null`` waits for ``show``.
"""

from __future__ import annotations

SCRIPT = r"""
(function () {
  "use strict";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const CONFIG = { responsive: true, displaylogo: false,
                   modeBarButtonsToRemove: ["select2d", "lasso2d"],
                   toImageButtonOptions: { format: "png", scale: 2 } };
  const FONT = { family: "system-ui, sans-serif", size: 12 };
  //: how each kind of point of the hyperparameter figure is drawn (colour null: its round's)
  const POINTS = {
    pruned: { symbol: "circle-open", size: 7, color: "#888888", opacity: 0.8, sign: "\u25CB" },
    round: { symbol: "circle", size: 8, color: null, opacity: 0.8, sign: "\u25CF" },
    off_range: { symbol: "triangle-down", size: 8, color: null, opacity: 0.6, sign: "\u25BC" },
    diverged: { symbol: "x", size: 8, color: "#d62728", opacity: 0.9, sign: "\u2715" },
    best: { symbol: "star", size: 16, color: "gold", opacity: 1, sign: "\u2605" },
  };
  let study = null;
  let trials = new Map();
  let selected = [];
  let added = [];  // the trials the reader added to the curves: kept when the data is new
  let filterWords = "";  // the trial table's filter: kept when the data is new

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child);
    return node;
  }

  function note(text) {  // a note's text, with `commands` as code
    const p = el("p", { className: "note" });
    text.split("`").forEach((part, i) => p.append(i % 2 ? el("code", {}, part) : part));
    return p;
  }

  function section(id, title, text) {
    const s = el("section", { id: id }, el("h2", {}, title));
    if (text) s.append(note(text));
    return s;
  }

  function newPlot(parent, height) {
    const div = el("div", { className: "plot" });
    div.style.height = height + "px";
    parent.append(div);
    return div;
  }

  function layout(extra) {
    const found = Object.assign({ font: FONT, autosize: true, hovermode: "closest",
                                  showlegend: false, margin: { l: 60, r: 14, t: 14, b: 50 } },
                                extra);
    for (const key of ["xaxis", "yaxis", "yaxis2"]) {
      found[key] = Object.assign({ zeroline: false, automargin: true }, found[key]);
    }
    return found;
  }

  function draw(div, traces, extra) {
    Plotly.newPlot(div, traces, layout(extra), CONFIG);
    div.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && typeof point.customdata === "number") choose(point.customdata);
    });
  }

  function hover(numbers) {
    return { customdata: numbers, hovertext: numbers.map((n) => trials.get(n).hover),
             hovertemplate: "%{hovertext}<extra></extra>" };
  }

  function axisTitle(text) { return { text: text, standoff: 6 }; }

  function bestSoFar(parent, fig) {
    const grid = el("div", { className: "grid" });
    parent.append(grid);
    const axes = [["finished", "trials finished (in order of finishing)"],
                  ["seconds", "seconds since the first trial started"]];
    const keep = (ys) => fig.numbers.filter((_, i) => ys[i] !== null);
    const pick = (xs, ys) => [xs.filter((_, i) => ys[i] !== null), ys.filter((y) => y !== null)];
    axes.forEach(([key, title], i) => {
      const [x, y] = pick(fig[key], fig.values);
      const [px, py] = pick(fig[key], fig.pruned);
      const traces = [
        Object.assign({ type: "scatter", mode: "markers", name: "each trial", x: x, y: y,
                        marker: { color: "#777777", size: 6, opacity: 0.6 } },
                      hover(keep(fig.values))),
        { type: "scatter", mode: "lines", name: "best so far", x: fig[key], y: fig.best,
          line: { shape: "hv", color: PALETTE[0], width: 2 },
          hovertemplate: "best so far %{y:.4~g}<extra></extra>" },
      ];
      if (px.length) {
        traces.splice(1, 0, Object.assign(
          { type: "scatter", mode: "markers", name: "pruned (at its last rung)", x: px, y: py,
            marker: { color: "#777777", size: 6, symbol: "circle-open" } },
          hover(keep(fig.pruned))));
      }
      draw(newPlot(grid, 320), traces, {
        showlegend: i === 0,
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
        margin: { l: 60, r: 14, t: 34, b: 50 },
        xaxis: { title: axisTitle(title), rangemode: "tozero" },
        yaxis: { title: axisTitle("best " + study.score), range: fig.range },
      });
    });
  }

  function pointStyle(group) {
    const style = POINTS[group.kind];
    const colour = style.color || PALETTE[(group.round || 0) % PALETTE.length];
    const marker = { symbol: style.symbol, size: style.size, color: colour,
                     opacity: style.opacity };
    if (group.kind === "best") marker.line = { color: "black", width: 1 };
    return [marker, colour];
  }

  function scatter(parent, fig) {
    const legend = el("p", { className: "legend" });
    fig.panels[0].groups.forEach((g) => {
      const [, colour] = pointStyle(g);
      const sign = el("span", {}, POINTS[g.kind].sign);
      sign.style.color = colour;
      legend.append(el("span", {}, sign, " " + g.label));
    });
    parent.append(legend);
    const grid = el("div", { className: "grid" });
    parent.append(grid);
    const y = fig.y;
    for (const panel of fig.panels) {
      const traces = panel.groups.map((g) => Object.assign(
        { type: "scatter", mode: "markers", name: g.label, x: g.x, y: g.y,
          marker: pointStyle(g)[0] }, hover(g.numbers)));
      const x = Object.assign({}, panel.x_axis, { title: axisTitle(panel.x_axis.title) });
      const line = y.edge_line === null ? [] : [{
        type: "line", xref: "paper", x0: 0, x1: 1, y0: y.edge_line, y1: y.edge_line,
        line: { color: "#999999", width: 1, dash: "dot" } }];
      const div = newPlot(grid, 290);
      div.dataset.name = panel.name;
      draw(div, traces, {
        xaxis: x, shapes: line,
        yaxis: { title: axisTitle(study.score), range: y.range, tickvals: y.tickvals,
                 ticktext: y.ticktext },
      });
    }
  }

  function webgl() {
    const canvas = document.createElement("canvas");
    return !!(canvas.getContext("webgl") || canvas.getContext("experimental-webgl"));
  }

  function parallel(parent, fig) {
    if (!webgl()) {
      parent.append(note("This browser has no WebGL: the parallel coordinates cannot be drawn."));
      return;
    }
    const score = fig.dims[fig.dims.length - 1];
    draw(newPlot(parent, 400), [{
      type: "parcoords", dimensions: fig.dims,
      line: { color: fig.score, colorscale: "Viridis", cmin: score.range[0],
              cmax: score.range[1], showscale: false },
      labelangle: -20, labelside: "top",
    }], { margin: { l: 60, r: 60, t: 80, b: 24 } });
  }

  function importance(parent, fig) {
    const names = fig.names.slice().reverse();
    draw(newPlot(parent, 70 + 28 * names.length), [{
      type: "bar", orientation: "h", x: fig.shares.slice().reverse(), y: names,
      marker: { color: PALETTE[2] }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
    }], {
      margin: { l: 80, r: 14, t: 10, b: 46 },
      xaxis: { title: axisTitle("importance (random forest, share)"), range: [0, 1] },
      yaxis: { ticksuffix: " " },
    });
  }

  let curvesDiv = null;
  let chips = null;

  function curves(parent, fig) {
    chips = el("div", { className: "chips" });
    parent.append(chips);
    curvesDiv = newPlot(parent, 540);
    drawCurves();
  }

  function curveTraces(n, colour) {
    const t = trials.get(n);
    const c = t.curve;
    const text = c.epoch.map(() => t.hover);
    const series = [["val_accuracy", "y", "solid", "validation accuracy"],
                    ["train_accuracy", "y", "dash", "training accuracy"],
                    ["val_loss", "y2", "solid", "validation loss"],
                    ["train_loss", "y2", "dash", "training loss"]];
    return series.map(([key, axis, dash, name], i) => ({
      type: "scatter", mode: "lines+markers", x: c.epoch, y: c[key], yaxis: axis,
      name: "trial " + n, legendgroup: "trial " + n, showlegend: i === 0,
      line: { color: colour, dash: dash, width: 1.8 }, marker: { size: 4 }, text: text,
      hovertemplate: "epoch %{x}: " + name + " %{y:.4~g}<br>%{text}<extra></extra>",
    }));
  }

  function drawCurves() {
    const fig = study.figures.curves;
    chips.replaceChildren();
    const traces = [];
    selected.forEach((n, i) => {
      const colour = PALETTE[i % PALETTE.length];
      traces.push(...curveTraces(n, colour));
      const chip = el("button", { className: "trial", type: "button",
                                  title: "take trial " + n + "'s curves away" },
                      "trial " + n + " \u00D7");
      chip.style.borderColor = colour;
      chip.addEventListener("click", () => {
        selected.splice(selected.indexOf(n), 1);
        added = added.filter((m) => m !== n);
        update();
      });
      chips.append(chip);
    });
    const reset = el("button", { type: "button" }, "the best " + fig.selected.length);
    reset.addEventListener("click", () => { selected = fig.selected.slice(); update(); });
    const none = el("button", { type: "button" }, "none");
    none.addEventListener("click", () => { selected = []; update(); });
    chips.append(reset, none);
    for (const [name, dash] of [["validation", "solid"], ["training", "dash"]]) {
      traces.push({ type: "scatter", mode: "lines", x: [null], y: [null], name: name,
                    line: { color: "black", dash: dash }, hoverinfo: "skip" });
    }
    Plotly.react(curvesDiv, traces, layout({
      showlegend: true, legend: { orientation: "h", x: 0, y: -0.06, yanchor: "top" },
      margin: { l: 60, r: 14, t: 10, b: 30 },
      xaxis: { anchor: "y2", title: axisTitle("epoch"), tickvals: fig.epoch_ticks },
      yaxis: { domain: [0.5, 1], title: axisTitle("accuracy") },
      yaxis2: { domain: [0.1, 0.44], type: "log", title: axisTitle("loss (log)"),
                tickformat: ".2~g" },
    }), CONFIG);
  }

  function update() {
    if (curvesDiv) drawCurves();
    markRows();
  }

  function markRows() {
    document.querySelectorAll("#trials tbody tr").forEach((row) => {
      row.classList.toggle("chosen", selected.includes(Number(row.dataset.number)));
    });
  }

  function choose(n) {
    document.dispatchEvent(new CustomEvent("caviar-trial", { detail: { number: n } }));
    if (!trials.has(n) || !trials.get(n).curve.epoch.length || !curvesDiv) return;
    if (!selected.includes(n)) selected.push(n);
    if (!added.includes(n)) added.push(n);
    update();
  }

  function sortable(table, rows) {
    const heads = table.querySelectorAll("th");
    heads.forEach((th, column) => {
      th.tabIndex = 0;
      const sort = () => {
        const up = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        const cell = (row) => row.cells[column].textContent;
        const numeric = rows.every((r) => cell(r) === "-" || Number.isFinite(Number(cell(r))));
        const key = (row) => (numeric ? Number(cell(row)) : cell(row));
        const sorted = rows.slice().sort((a, b) => {
          if (cell(a) === "-" || cell(b) === "-") return (cell(a) === "-") - (cell(b) === "-");
          const [p, q] = [key(a), key(b)];
          const order = numeric ? p - q : String(p).localeCompare(String(q));
          return up ? order : -order;
        });
        table.tBodies[0].append(...sorted);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }

  function tableSection(t) {
    const s = section(t.id, t.title, t.note);
    const table = el("table");
    if (t.header.some((h) => h)) {
      table.append(el("thead", {}, el("tr", {}, ...t.header.map((h) => el("th", {}, h)))));
    }
    const body = el("tbody");
    const rows = t.rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))));
    body.append(...rows);
    table.append(body);
    s.append(el("div", { className: "scroll" }, table));
    if (table.tHead) sortable(table, rows);
    return [s, table, rows];
  }

  function trialTable(t) {
    const [s, , rows] = tableSection(t);
    rows.forEach((row, i) => {
      row.dataset.number = t.numbers[i];
      row.addEventListener("click", () => choose(t.numbers[i]));
    });
    const count = el("span", { className: "note" });
    const filter = el("input", { type: "search", placeholder: "filter: e.g. pruned, relu, 0.98" });
    filter.setAttribute("aria-label", "filter the trials");
    filter.value = filterWords;
    const apply = () => {
      filterWords = filter.value;
      const words = filter.value.toLowerCase().split(/\s+/).filter((w) => w);
      let shown = 0;
      for (const row of rows) {
        const text = row.textContent.toLowerCase();
        row.hidden = !words.every((w) => text.includes(w));
        shown += row.hidden ? 0 : 1;
      }
      count.textContent = " " + shown + " of " + rows.length + " trials";
    };
    filter.addEventListener("input", apply);
    s.querySelector(".scroll").before(el("p", {}, filter, count));
    apply();
    return s;
  }

  const FIGURES = [["best_so_far", bestSoFar], ["scatter", scatter], ["parallel", parallel],
                   ["importance", importance], ["curves", curves]];

  function show(data) {
    study = data;
    trials = new Map(data.trials.map((t) => [t.number, t]));
    const figures = document.getElementById("figures");
    const tables = document.getElementById("tables");
    figures.querySelectorAll(".js-plotly-plot").forEach((div) => Plotly.purge(div));
    figures.replaceChildren();
    tables.replaceChildren();
    curvesDiv = null;
    document.getElementById("headline").textContent = data.headline;
    const links = [];
    for (const [key, drawFigure] of FIGURES) {
      const fig = data.figures[key];
      if (!fig) continue;
      const s = section("figure-" + key, fig.title, fig.note);
      figures.append(s);
      if (key === "curves") {
        added = added.filter((n) => trials.has(n) && trials.get(n).curve.epoch.length);
        selected = fig.selected.concat(added.filter((n) => !fig.selected.includes(n)));
      }
      drawFigure(s, fig);
      links.push([s.id, fig.title]);
    }
    tables.append(trialTable(data.trial_table));
    links.push(["trials", data.trial_table.title]);
    for (const t of data.sections) {
      tables.append(tableSection(t)[0]);
      links.push([t.id, t.title]);
    }
    if (data.pngs.length) {
      const s = section("pngs", "Figures as PNG", "Written beside this page by `caviar report " +
                        data.study + " --png`, for papers.");
      for (const png of data.pngs) {
        s.append(el("p", {}, el("img", { src: png.file, alt: png.alt })));
      }
      tables.append(s);
      links.push(["pngs", "PNG"]);
    }
    document.getElementById("contents").replaceChildren(
      ...links.map(([id, title]) => el("a", { href: "#" + id }, title.split(" (")[0])));
    markRows();
  }

  window.caviarReport = { show: show };
  const first = JSON.parse(document.getElementById("study-data").textContent);
  if (first) show(first);
})();
"""
