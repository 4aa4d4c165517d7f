"""The dashboard's own script, served beside the report's (:mod:`caviar.dashboard.server`).

It adds a live bar above the report: the pool's progress line, fresh with each ``study`` event
of ``/api/events`` (which also redraws the report: ``caviarReport.show``), and a trial panel.
A trial chosen on the page (its row, or its point in a figure: the report's ``caviar-trial``
event) shows there with a "babysit this one" button when its model was kept, or the reason it
cannot be babysat; the button posts ``{"trial": N}`` to ``/api/babysit`` with the token and
shows panda's page as a link. When the server ends (the tune is over), the page stays as it was
and says so.
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

  function drawTrial() {
    if (chosen === null) return;
    panel.hidden = false;
    panel.replaceChildren("Trial " + chosen + ": ");
    if (progress.kept.includes(chosen)) {
      const button = document.createElement("button");
      button.type = "button";
      button.id = "babysit";
      button.textContent = "babysit this one";
      button.addEventListener("click", () => babysit(chosen, button));
      panel.append(button);
    } else {
      const why = progress.running.some((r) => r.trial === chosen)
        ? "still training; only a finished trial whose model the search kept can be babysat"
        : "no kept model (the search keeps the final models of its best complete trials " +
          "only), so it cannot be babysat";
      panel.append(why);
    }
  }

  async function babysit(number, button) {
    button.disabled = true;
    const said = document.createElement("span");
    said.className = "babysit-result";
    said.textContent = " starting caviar panda (it loads the model)…";
    panel.append(said);
    try {
      const response = await fetch("/api/babysit", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer " + token },
        body: JSON.stringify({ trial: number }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.reason || response.statusText);
      const link = document.createElement("a");
      link.href = body.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.id = "panda-link";
      link.textContent = "panda's page for trial " + number;
      said.replaceChildren(" ", link, " (run " + body.run + "; stop it with `" + body.stop + "`)");
      window.open(body.url, "_blank", "noopener");
    } catch (error) {
      said.textContent = " could not babysit: " + error.message;
    } finally {
      button.disabled = false;
    }
  }

  function receive(data) {
    if (data.version === version) return;
    version = data.version;
    progress = data.progress;
    line.textContent = (progress.live ? "live: " : "finished: ") + progress.line;
    if (data.study) window.caviarReport.show(data.study);
    drawTrial();
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
