"""The dashboard's own script, served beside the report's (:mod:`caviar.dashboard.server`).

It adds a live bar above the report: the pool's progress line, fresh with each ``study`` event
of ``/api/events`` (which also redraws the report, ``caviarReport.show``, at most once per
twice the time its last drawing took), and a trial panel. A trial chosen on the page (its row,
or its point in a figure: the report's ``caviar-trial`` event) shows there with a "babysit
this one" button when its model was kept, or the reason it cannot be babysat; the button posts
``{"trial": N}`` to ``/api/babysit`` with the token and shows panda's page as a link (not a
pop-up: browsers block one opened after a wait). When the server ends (the tune is over), the
page stays as it was and says so.
"""

from __future__ import annotations

LIVE_SCRIPT = r"""
(function () {
  "use strict";
  const token = new URLSearchParams(location.search).get("token") || "";
  const style = document.createElement("style");
  style.textContent = [
    "#live { position: sticky; top: 0; z-index: 10; background: #f7fbff; padding: 0.4em 0.6em;",
    "        border: 1px solid #cfe0f0; border-radius: 0 0 6px 6px; font-size: 0.92em; }",
    "#live-line { font-variant-numeric: tabular-nums; }",
    "#live-trial { margin-top: 0.3em; }",
    "#live-trial button { font: inherit; margin-left: 0.5em; }",
    "#live .gone { color: #a15c00; }",
  ].join("\n");
  document.head.append(style);

  const bar = document.createElement("div");
  bar.id = "live";
  bar.innerHTML = '<div id="live-line" role="status">connecting…</div>' +
                  '<div id="live-trial" hidden></div>';
  document.body.prepend(bar);
  const line = bar.querySelector("#live-line");
  const panel = bar.querySelector("#live-trial");
  let progress = { kept: [], running: [] };
  let chosen = null;
  let version = -1;

  let drawn = null;  // what the panel shows: [trial, kept, running], drawn again on a change

  function drawTrial() {
    if (chosen === null) return;
    const kept = progress.kept.includes(chosen);
    const running = progress.running.some((r) => r.trial === chosen);
    const now = [chosen, kept, running].join();
    if (now === drawn) return;  // a button being pressed, or its answer, stays as it is
    drawn = now;
    panel.hidden = false;
    panel.replaceChildren("Trial " + chosen + ": ");
    if (kept) {
      const button = document.createElement("button");
      button.type = "button";
      button.id = "babysit";
      button.textContent = "babysit this one";
      button.addEventListener("click", () => babysit(chosen, button));
      panel.append(button);
    } else {
      panel.append(running
        ? "still training; only a finished trial whose model the search kept can be babysat"
        : "no kept model (the search keeps the final models of its best complete trials " +
          "only), so it cannot be babysat");
    }
  }

  async function babysit(number, button) {
    button.disabled = true;
    const said = document.createElement("span");
    said.className = "babysit-result";
    said.textContent = " starting caviar panda (it loads the model)…";
    panel.querySelectorAll(".babysit-result").forEach((old) => old.remove());
    panel.append(said);
    const ask = () => fetch("/api/babysit", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + token },
      body: JSON.stringify({ trial: number }),
    });
    try {
      // a request lost on its way (a connection closed as it was sent) is asked once more: a
      // trainer already started for the trial answers with the same page
      const response = await ask().catch(ask);
      const text = await response.text();
      let body;
      try { body = JSON.parse(text); } catch (_) { body = { reason: text.slice(0, 200) }; }
      if (!response.ok) throw new Error(body.reason || response.statusText);
      const link = document.createElement("a");
      link.href = body.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.id = "panda-link";
      link.textContent = "panda's page for trial " + number;
      said.replaceChildren(" ", link, " (run " + body.run + "; stop it with `" + body.stop + "`)");
    } catch (error) {
      said.textContent = " could not babysit: " + error.message;
    } finally {
      button.disabled = false;
    }
  }

  //: the report is drawn again at most once per twice the time its last drawing took (a busy
  //: machine draws less often, and the page stays free to hover and type); the line at once
  let pending = null;
  let timer = null;
  let lastEnd = 0;
  let lastCost = 0;

  function redraw() {
    timer = null;
    const study = pending;
    pending = null;
    const start = performance.now();
    window.caviarReport.show(study);
    lastEnd = performance.now();
    lastCost = lastEnd - start;
  }

  function receive(data) {
    if (data.version === version) return;
    version = data.version;
    progress = data.progress;
    line.textContent = progress.line;
    drawTrial();
    if (!data.study) return;
    pending = data.study;
    if (timer === null) {
      timer = setTimeout(redraw, Math.max(0, lastEnd + 2 * lastCost - performance.now()));
    }
  }

  document.addEventListener("caviar-trial", (event) => {
    chosen = event.detail.number;
    drawTrial();
  });

  const events = new EventSource("/api/events?token=" + encodeURIComponent(token));
  events.addEventListener("study", (event) => receive(JSON.parse(event.data)));
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED || version >= 0) {
      const gone = document.createElement("span");
      gone.className = "gone";
      gone.textContent = " (the dashboard's server has ended: the page stays as it was)";
      if (!line.querySelector(".gone")) line.append(gone);
    }
  });
  events.addEventListener("open", () => {
    const gone = line.querySelector(".gone");
    if (gone) gone.remove();
  });
})();
"""
