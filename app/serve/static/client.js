"use strict";
// Emolens browser client: the camera (or the demo clip) -> WS /v1/stream -> boxes, labels and bars on a canvas.
// One frame is in flight at a time: the next is sent when the answer comes, so latency stays at one round trip.
// The token, when the server needs one, comes from the page's address: /#token=... (never sent in a URL).

const state = { phase: "starting", source: null, sent: 0, answered: 0, dropped: 0, drawn: [], drawnFrames: 0,
                latencyMs: 0, fps: 0, error: null };
window.emolens = state;  // the page's own state, read by the tests (and handy in the console)

const video = document.getElementById("video");
const view = document.getElementById("view");
const context = view.getContext("2d");
const grab = document.createElement("canvas");
const statusLine = document.getElementById("status");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
let palette = {};
let latest = null;
let socket = null;
let sentAt = 0;
let waiting = false;

async function start() {
  palette = await (await fetch("palette.json")).json();
  document.getElementById("legend").replaceChildren(...Object.entries(palette).map(([label, color]) => {
    const item = document.createElement("li");
    item.textContent = label;
    item.style.setProperty("--color", color);
    return item;
  }));
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser offers no camera here (it needs https or localhost)");
    }
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    await video.play();
    connect("camera");
  } catch (error) {
    state.phase = "no-camera";
    state.error = String(error && error.message ? error.message : error);
    document.getElementById("no-camera-reason").textContent = state.error;
    document.getElementById("no-camera").hidden = false;
    statusLine.textContent = "no camera";
  }
  requestAnimationFrame(draw);
}

document.getElementById("demo").addEventListener("click", async () => {
  document.getElementById("no-camera").hidden = true;
  video.srcObject = null;
  video.src = "demo.webm";
  video.loop = true;
  await video.play();
  connect("demo");
});

function connect(source) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v1/stream`, token ? ["emolens", `bearer.${token}`] : ["emolens"]);
  socket.onopen = () => { state.phase = "streaming"; state.source = source; sendFrame(); };
  socket.onmessage = (event) => {
    waiting = false;
    const message = JSON.parse(event.data);
    if (message.error) {
      state.error = message.error;
    } else {
      const now = performance.now();
      state.latencyMs = now - sentAt;
      state.fps = 0.9 * state.fps + 0.1 * (1000 / Math.max(state.latencyMs, 1));
      state.answered += 1;
      state.dropped = message.dropped;
      latest = message;
    }
    sendFrame();
  };
  socket.onclose = (event) => {
    state.phase = "closed";
    state.error = event.code === 1008 ? "the server needs a token: open this page as /#token=YOUR_TOKEN"
                                      : (event.reason || `connection closed (${event.code})`);
    statusLine.textContent = state.error;
  };
}

function sendFrame() {
  if (!socket || socket.readyState !== WebSocket.OPEN || waiting) return;
  if (video.readyState < 2 || !video.videoWidth) { setTimeout(sendFrame, 50); return; }
  grab.width = video.videoWidth;
  grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  waiting = true;
  grab.toBlob((blob) => {
    sentAt = performance.now();
    socket.send(blob);
    state.sent += 1;
  }, "image/jpeg", 0.85);
}

function draw() {
  if (video.videoWidth) {
    if (view.width !== video.videoWidth) { view.width = video.videoWidth; view.height = video.videoHeight; }
    context.drawImage(video, 0, 0);
    const faces = latest ? latest.faces : [];
    faces.forEach(drawFace);
    state.drawn = faces.map((face) => ({ id: face.face_id, dominant: face.dominant,
                                          score: face.probs[face.dominant], box: face.box }));
    state.drawnFrames += 1;
    if (state.phase === "streaming") {
      statusLine.textContent = `${state.source} · ${video.videoWidth}x${video.videoHeight} · ` +
        `${state.fps.toFixed(1)} frames/s · ${state.latencyMs.toFixed(0)} ms · ${faces.length} face(s) · ` +
        `${state.dropped} dropped`;
    }
  }
  requestAnimationFrame(draw);
}

function drawFace(face) {
  const { x, y, w, h } = face.box;
  const color = palette[face.dominant] || "#e8e8e8";
  context.lineWidth = Math.max(2, w / 40);
  context.strokeStyle = color;
  context.strokeRect(x, y, w, h);
  const size = Math.max(12, Math.round(w / 7));
  context.font = `bold ${size}px system-ui, sans-serif`;
  const label = `#${face.face_id} ${face.dominant} ${(100 * face.probs[face.dominant]).toFixed(0)}%`;
  const labelWidth = context.measureText(label).width + 8;
  context.fillStyle = color;
  context.fillRect(x, y - size - 6, labelWidth, size + 6);
  context.fillStyle = "#1e1e21";
  context.fillText(label, x + 4, y - 5);
  // Seven bars under the box, one per emotion in the card's order, in the window's colours.
  const barHeight = Math.max(4, Math.round(h / 14));
  Object.entries(face.probs).forEach(([emotion, p], index) => {
    const top = y + h + 4 + index * (barHeight + 2);
    context.fillStyle = "rgba(30, 30, 33, 0.7)";
    context.fillRect(x, top, w, barHeight);
    context.fillStyle = palette[emotion] || "#e8e8e8";
    context.fillRect(x, top, Math.max(1, w * p), barHeight);
  });
}

start();
