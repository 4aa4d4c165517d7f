// caviar panda: the babysitting page. It only draws: what to draw (each branch's whole curve,
// colours, command markers and their labels, the tree) comes computed from the server
// (caviar/panda/view.py) in every `state` event of /api/events.
"use strict";

(() => {
  const token = document.querySelector('meta[name="caviar-token"]').content;
  const $ = (id) => document.getElementById(id);
  const rows = new Map(); // hyperparameter name -> {value, input}
  let current = null; // the last state and view: {state, view}
  let rollbackBranchChosen = false;

  // -- talking to the server ------------------------------------------------------------------
  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      throw new Error(payload?.reason ?? `${response.status} ${response.statusText}`);
    }
    return payload;
  }

  async function command(path, body, success) {
    showError(null);
    try {
      const result = await post(path, body);
      notice(success(result));
    } catch (error) {
      showError(error.message);
    }
  }

  function showError(message) {
    $("error").hidden = !message;
    $("error").textContent = message ?? "";
    if (message) $("notice").hidden = true;
  }

  function notice(message) {
    $("notice").hidden = !message;
    $("notice").textContent = message ?? "";
  }

  function connect() {
    const source = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
    source.addEventListener("state", (event) => {
      const { state, view } = JSON.parse(event.data);
      render(state, view);
    });
    source.onerror = () => {
      // EventSource reconnects by itself (retry: 2 s); say so meanwhile
      $("status").className = "offline";
      $("status").textContent = "connection lost, reconnecting…";
    };
  }

  // -- drawing --------------------------------------------------------------------------------
  function render(state, view) {
    current = { state, view };
    renderStatus(state);
    renderCharts(view);
    renderHyperparameters(state);
    renderRollback(state, view);
    renderTree(view);
    renderCommands(view);
  }

  function renderStatus(state) {
    const run = state.run;
    $("run-name").textContent = run.name;
    $("status").className = "live";
    const dropped = (state.dropped ?? []).length;
    $("status").textContent =
      `${run.status} · branch ${state.branch} · epoch ${state.epoch} · seed ${run.seed} · ${run.dtype}` +
      (dropped ? ` · ${dropped} snapshot${dropped === 1 ? "" : "s"} dropped for the disk budget` : "");
    const ended = run.status === "stopped" || run.status === "finished";
    $("pause").disabled = ended || run.status !== "running";
    $("resume").disabled = ended || run.status !== "paused";
    $("stop").disabled = ended;
  }

  function traces(view, metrics) {
    const out = [];
    for (const line of view.lines) {
      for (const [metric, name, dash] of metrics) {
        out.push({
          x: line.epoch,
          y: line[metric],
          name: `branch ${line.branch} · ${name}`,
          legendgroup: `branch ${line.branch}`,
          mode: "lines+markers",
          marker: { size: line.active ? 5 : 3 },
          line: { color: line.colour, width: line.active ? 3 : 1.5, dash },
          opacity: line.active ? 1 : 0.6,
          showlegend: true,
          meta: { branch: line.branch, metric },
          hovertemplate: `branch ${line.branch} ${name}<br>epoch %{x}: %{y:.4g}<extra></extra>`,
        });
      }
    }
    return out;
  }

  function markerLayout(view) {
    const shapes = [];
    const annotations = [];
    const stacked = new Map(); // epoch -> labels already there
    for (const m of view.markers) {
      const n = stacked.get(m.epoch) ?? 0;
      stacked.set(m.epoch, n + 1);
      const dash = m.on_active ? "solid" : "dot";
      shapes.push({
        type: "line", xref: "x", yref: "paper", x0: m.epoch, x1: m.epoch, y0: 0, y1: 1,
        line: { color: m.colour, width: 1, dash },
      });
      annotations.push({
        x: m.epoch, xref: "x", y: 1 - 0.09 * n, yref: "paper", xanchor: "left", yanchor: "top",
        text: m.applied ? m.label : `${m.label} (next epoch)`, showarrow: false,
        font: { size: 11, color: m.colour }, bgcolor: "rgba(255,255,255,0.8)",
      });
    }
    return { shapes, annotations };
  }

  function drawChart(id, title, yTitle, data, view) {
    const layout = {
      title: { text: title, font: { size: 14 } },
      margin: { l: 56, r: 12, t: 36, b: 40 },
      xaxis: { title: { text: "epoch" }, rangemode: "tozero", dtick: null },
      yaxis: { title: { text: yTitle } },
      legend: { orientation: "h", y: -0.18, font: { size: 11 } },
      uirevision: "keep", // zoom and legend choices survive updates
      ...markerLayout(view),
    };
    Plotly.react($(id), data, layout, { displaylogo: false, responsive: true });
  }

  function renderCharts(view) {
    drawChart("loss-chart", "loss", "cross-entropy", traces(view, [
      ["train_loss", "train", "solid"],
      ["val_loss", "validation", "dash"],
    ]), view);
    drawChart("accuracy-chart", "accuracy", "accuracy", traces(view, [
      ["train_accuracy", "train", "solid"],  // training solid, validation dashed: both charts
      ["val_accuracy", "validation", "dash"],
    ]), view);
  }

  function shown(value) {
    if (typeof value === "number" && value !== 0 && (Math.abs(value) < 1e-2 || Math.abs(value) >= 1e4)) {
      return value.toExponential().replace(/\.?0+e/, "e").replace("e+", "e");
    }
    return String(value);
  }

  function renderHyperparameters(state) {
    const body = $("hyperparameters").tBodies[0];
    const names = Object.keys(state.hyperparameters).sort(
      (a, b) => (b in state.mutable) - (a in state.mutable) || a.localeCompare(b),
    );
    if (names.join() !== [...rows.keys()].join()) {
      body.replaceChildren();
      rows.clear();
      for (const name of names) {
        const tr = body.insertRow();
        tr.insertCell().textContent = name;
        const value = tr.insertCell();
        value.className = "value";
        const cell = tr.insertCell();
        let input = null;
        if (name in state.mutable) {
          input = document.createElement("input");
          input.name = name;
          input.placeholder = "new";
          input.title = state.mutable[name];
          input.setAttribute("aria-label", `new ${name}`);
          cell.append(input);
        } else {
          tr.className = "fixed";
        }
        rows.set(name, { value, input });
      }
    }
    const pending = new Map();
    for (const c of state.commands) {
      if (!c.applied && c.branch === state.branch && rows.has(c.key)) pending.set(c.key, c.new);
    }
    for (const [name, row] of rows) {
      row.value.textContent = shown(state.hyperparameters[name]);
      if (pending.has(name)) {
        const span = document.createElement("span");
        span.className = "pending";
        span.textContent = ` → ${shown(pending.get(name))}`;
        row.value.append(span);
      }
    }
  }

  function parse(text) {
    const t = text.trim();
    if (t === "true" || t === "false") return t === "true";
    if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return Number(t);
    return t;
  }

  function renderRollback(state, view) {
    const select = $("rollback-branch");
    const chosen = rollbackBranchChosen ? select.value : String(state.branch);
    select.replaceChildren(...view.tree.map((b) => new Option(`branch ${b.id}`, String(b.id))));
    select.value = chosen;
    const epochs = state.snapshots[select.value] ?? [];
    $("snapshots").textContent = epochs.length
      ? `snapshots of branch ${select.value}: epochs ${compact(epochs)}`
      : `branch ${select.value} has no snapshots of its own yet`;
  }

  function compact(epochs) {
    const sorted = [...epochs].sort((a, b) => a - b);
    return sorted.length > 8 ? `${sorted[0]}–${sorted[sorted.length - 1]}` : sorted.join(", ");
  }

  function renderTree(view) {
    $("tree").replaceChildren(...view.tree.map((b) => {
      const li = document.createElement("li");
      li.className = b.active ? "active" : "";
      li.dataset.branch = b.id;
      li.style.paddingLeft = `${b.depth * 16}px`;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = b.colour;
      const from = b.parent === null ? "root" : `from branch ${b.parent} @ epoch ${b.from_epoch}, ${b.mode}`;
      li.append(swatch, `branch ${b.id} · ${from} · to epoch ${b.last_epoch}${b.active ? " (current)" : ""}`);
      return li;
    }));
  }

  function renderCommands(view) {
    $("commands").replaceChildren(...view.commands.slice(-50).reverse().map((c) => {
      const li = document.createElement("li");
      li.className = c.applied ? "" : "pending";
      const when = new Date(c.time * 1000).toLocaleTimeString();
      li.textContent = `${when} b${c.branch} e${c.epoch} ${c.label}${c.applied ? "" : " (pending)"}`;
      return li;
    }));
  }

  // -- controls -------------------------------------------------------------------------------
  $("set-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = {};
    for (const [name, row] of rows) {
      if (row.input && row.input.value.trim() !== "") changes[name] = parse(row.input.value);
    }
    if (Object.keys(changes).length === 0) {
      showError("nothing to set: type a new value next to a hyperparameter first");
      return;
    }
    command("/api/set", { changes }, (result) => {
      for (const row of rows.values()) if (row.input) row.input.value = "";
      const labels = result.commands.map((c) => `${c.key} ${shown(c.old)} → ${shown(c.new)}`);
      return `recorded ${labels.join(", ")}: applied at the next epoch boundary`;
    });
  });

  $("rollback-branch").addEventListener("change", () => {
    rollbackBranchChosen = true;
    if (current) renderRollback(current.state, current.view);
  });

  $("rollback-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const epoch = Number($("rollback-epoch").value);
    const branch = Number($("rollback-branch").value);
    const mode = $("rollback-mode").value;
    command("/api/rollback", { epoch, branch, mode }, (result) => {
      rollbackBranchChosen = false;
      return `branch ${result.branch} started from branch ${branch} at epoch ${epoch} (${mode})`;
    });
  });

  for (const action of ["pause", "resume", "stop"]) {
    $(action).addEventListener("click", () => command(`/api/${action}`, {}, () => `${action}: recorded`));
  }

  connect();
})();
