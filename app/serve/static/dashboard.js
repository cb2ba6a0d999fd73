"use strict";
// The operator's dashboard (GET /studies/{study}): participants connected and done, each one's camera check,
// progress and face-found share, refreshed every second; the study report rebuilt on demand.
// With a token, open it as /studies/NAME#token=TOKEN (the token never goes into a URL).

const study = decodeURIComponent(location.pathname.split("/")[2]);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const dashboard = { status: null, error: null, report: null };
window.emolensDashboard = dashboard;  // read by the tests

function cell(text, className) {
  const td = document.createElement("td");
  if (text instanceof Node) td.append(text); else td.textContent = text;
  if (className) td.className = className;
  return td;
}

function bar(share) {
  const outer = document.createElement("div");
  outer.className = "bar";
  const inner = document.createElement("span");
  inner.style.width = `${Math.round(100 * share)}%`;
  outer.append(inner);
  const wrap = document.createElement("span");
  wrap.append(outer, ` ${Math.round(100 * share)}%`);
  return wrap;
}

async function refresh() {
  try {
    const response = await fetch(`/studies/${study}/status`, { headers });
    const status = await response.json();
    if (!response.ok) throw new Error(status.error);
    dashboard.status = status;
    dashboard.error = null;
    document.getElementById("title").textContent = `${status.title}: dashboard`;
    document.getElementById("summary").textContent = `${status.connected} connected, ${status.done} done, ` +
      `${status.sessions.length} session(s) on disk (${status.sessions.filter((s) => !s.complete).length} incomplete)`;
    document.getElementById("consent").textContent = status.consent;
    document.getElementById("retention").textContent = status.retention;
    document.getElementById("people").replaceChildren(...status.participants.map((p) => {
      const row = document.createElement("tr");
      const state = p.state === "watching" ? (p.connected ? "watching" : "left (may resume)") : p.state;
      row.append(cell(p.participant), cell(state), cell(p.checked ? "passed" : "-"), cell(bar(p.progress)),
                 cell(p.face_found === null ? "-" : `${Math.round(100 * p.face_found)}%`, "number"),
                 cell(String(p.frames), "number"), cell(String(p.dropped), "number"));
      return row;
    }));
  } catch (error) {
    dashboard.error = String(error.message || error);
    document.getElementById("summary").textContent = token ? dashboard.error :
      `${dashboard.error} (open this page as /studies/${study}#token=YOUR_TOKEN)`;
  }
}

document.getElementById("rebuild").addEventListener("click", async () => {
  const line = document.getElementById("report-status");
  line.textContent = "building…";
  const response = await fetch(`/studies/${study}/report`, { method: "POST", headers });
  const answer = await response.json();
  if (!response.ok) { line.textContent = answer.error; return; }
  // The report needs the token too: fetch it and open it from memory.
  const page = await fetch(answer.report, { headers });
  const link = document.getElementById("report");
  link.href = URL.createObjectURL(new Blob([await page.text()], { type: "text/html" }));
  link.hidden = false;
  dashboard.report = answer;
  line.textContent = `built ${new Date().toLocaleTimeString()}` +
    (answer.warnings.length ? `; ${answer.warnings.join("; ")}` : "");
});

refresh();
setInterval(refresh, 1000);
