"use strict";
// A remote panel's participant page (emolens serve --study DIR): consent, camera check, the stimuli full screen in
// the study's order after its baseline, camera frames streamed with the stimulus's currentTime, a thank-you.
// The invitation code comes from the address (#code=..., never sent in a URL); the key the server gives back is
// kept in sessionStorage, so a reload resumes the same session where it stopped. A dropped connection (the network,
// or the service restarting) is retried every second with the same key; the frames go on into the same session, and
// the end of the stimuli is told to the server once it is back.

const FPS = 15;
const state = { phase: "starting", participant: null, sent: 0, answered: 0, recorded: 0, problems: [],
                checked: false, stimulus: null, error: null, reconnects: 0, fullscreen: null, muted: null };
window.emolensPanel = state;  // the page's own state, read by the tests

const study = decodeURIComponent(location.pathname.split("/")[2]);
const code = new URLSearchParams(location.hash.slice(1)).get("code");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const storageKey = `emolens-panel-${study}`;
const camera = document.getElementById("camera");
const grab = document.createElement("canvas");
let joined = null;
let socket = null;
let phaseOf = () => ({ phase: "check" });  // what the frame being captured now is
let onDone = null;
let finished = false;  // the last stimulus ended: say so on the open connection, or on the next one

function show(id) {
  for (const section of ["consent", "check", "message"]) document.getElementById(section).hidden = section !== id;
}

function say(phase, title, text) {
  state.phase = phase;
  document.getElementById("stage").hidden = true;
  document.getElementById("card").hidden = false;
  document.getElementById("message-title").textContent = title;
  document.getElementById("message-text").textContent = text;
  show("message");
}

async function call(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/panel/${study}/${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `${response.status}`);
  return answer;
}

async function start() {
  try {
    const key = sessionStorage.getItem(storageKey);
    joined = await call("join", key ? { key } : { code });
  } catch (error) {
    say("refused", "This link does not open a session", error.message);
    return;
  }
  sessionStorage.setItem(storageKey, joined.key);
  state.participant = joined.participant;
  document.getElementById("title").textContent = joined.title;
  if (joined.state === "done") return say("thanks", "Thank you", "Your session is complete. You may close this page.");
  if (joined.state === "watching") return checkCamera();
  document.getElementById("consent-text").textContent = joined.consent;
  document.getElementById("retention-text").textContent = joined.retention;
  state.phase = "consent";
  show("consent");
}

document.getElementById("agree").addEventListener("click", async () => {
  joined = await call("consent", { key: joined.key, agreed: true });
  checkCamera();
});

document.getElementById("decline").addEventListener("click", async () => {
  await call("consent", { key: joined.key, agreed: false });
  say("declined", "Thank you", "Nothing was recorded. You may close this page.");
});

async function checkCamera() {
  state.phase = "check";
  show("check");
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser offers no camera here (the page needs https or localhost)");
    }
    camera.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    await camera.play();
  } catch (error) {
    return say("no-camera", "The camera did not start",
               `${error.message || error}. Allow this page to use the camera, then reload it.`);
  }
  connect();
  setInterval(sendFrame, 1000 / FPS);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/panel/${study}/ws`, ["emolens", `panel.${joined.key}`]);
  socket.onopen = sayDone;
  socket.onmessage = (event) => answered(JSON.parse(event.data));
  socket.onclose = (event) => {
    if (state.phase === "thanks") return;
    if (event.code === 1008) return say("refused", "This session is closed", event.reason);
    state.reconnects += 1;  // a dropped connection: the same session goes on when it is back
    setTimeout(connect, 1000);
  };
}

function answered(message) {
  state.answered += message.frames && !message.done ? message.frames : 1;  // refusals in a row: one answer
  if (message.error) state.error = message.error;
  if (message.recorded) state.recorded += 1;
  if (message.done) {
    state.phase = "thanks";
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    say("thanks", "Thank you", "That is all. Your answers are recorded; you may close this page.");
    socket.close();
    if (onDone) onDone();
  }
  if (message.check && state.phase === "check") {  // answers to check frames still on their way are ignored
    state.problems = message.check.problems;
    state.checked = message.check.passed;
    const line = document.getElementById("check-status");
    line.textContent = state.checked ? "All good: press Start when you are ready." :
      (state.problems.length ? "Not yet:" : "Hold still…");
    line.classList.toggle("passed", state.checked);
    document.getElementById("problems").replaceChildren(...state.problems.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    document.getElementById("start").disabled = !state.checked;
  }
}

function sendFrame() {
  const phase = phaseOf();
  if (!phase || !socket || socket.readyState !== WebSocket.OPEN || !camera.videoWidth) return;
  if (socket.bufferedAmount > 2_000_000) return;  // the network is behind: skip a frame rather than queue
  grab.width = camera.videoWidth;
  grab.height = camera.videoHeight;
  grab.getContext("2d").drawImage(camera, 0, 0);  // the camera's picture and the stimulus's time, together
  grab.toBlob((blob) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify(phase));
    socket.send(blob);
    state.sent += 1;
  }, "image/jpeg", 0.85);
}

document.getElementById("start").addEventListener("click", async () => {
  state.phase = "playing";
  document.getElementById("start").disabled = true;
  document.getElementById("check-status").textContent = "Loading the videos…";
  // Full screen now, while the click still counts as the participant's gesture (loading may outlast it).
  const root = document.documentElement;  // (a phone's browser may offer full screen for videos only)
  const fullscreen = root.requestFullscreen ? root.requestFullscreen().then(() => true, () => false) : false;
  let media;
  try {
    media = await Promise.all(joined.stimuli.map(preload));
  } catch (error) {
    return say("error", "The videos did not load", String(error.message || error));
  }
  state.fullscreen = await fullscreen;  // a browser that refuses still plays in the window
  document.getElementById("card").hidden = true;
  document.getElementById("stage").hidden = false;
  await play(media);
});

async function preload(stimulus) {
  // The whole file first, so playback never waits for the network.
  const response = await fetch(stimulus.url, { headers: { "X-Emolens-Key": joined.key } });
  if (!response.ok) throw new Error(`${stimulus.name}: ${(await response.json()).error}`);
  return { ...stimulus, src: URL.createObjectURL(await response.blob()) };
}

async function play(media) {
  const resume = joined.resume || { phase: "baseline", stimulus: 0, t_s: 0 };
  if (joined.baseline_s > 0 && resume.phase === "baseline") await baseline(resume.t_s);
  for (let index = resume.stimulus; index < media.length; index++) {
    await showStimulus(media[index], index === resume.stimulus && resume.phase === "stimulus" ? resume.t_s : 0);
  }
  phaseOf = () => null;
  await new Promise((resolve) => { onDone = resolve; finished = true; sayDone(); });
}

function sayDone() {
  if (finished && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ phase: "done" }));
}

function baseline(from) {
  const cross = document.getElementById("baseline");
  cross.hidden = false;
  state.stimulus = null;
  const started = performance.now() - from * 1000;
  phaseOf = () => ({ phase: "baseline", t_s: (performance.now() - started) / 1000 });
  return new Promise((resolve) => setTimeout(() => { cross.hidden = true; resolve(); },
                                             (joined.baseline_s - from) * 1000));
}

function showStimulus(stimulus, from) {
  state.stimulus = stimulus.name;
  if (stimulus.kind === "image") {
    const still = document.getElementById("still");
    still.src = stimulus.src;
    still.hidden = false;
    const started = performance.now() - from * 1000;
    phaseOf = () => ({ phase: "stimulus", stimulus: stimulus.name, t_s: (performance.now() - started) / 1000 });
    return new Promise((resolve) => setTimeout(() => { still.hidden = true; resolve(); },
                                               (stimulus.duration_s - from) * 1000));
  }
  const video = document.getElementById("stimulus");
  video.src = stimulus.src;
  video.currentTime = from;
  video.hidden = false;
  phaseOf = () => (video.paused || video.ended ? null :
                   { phase: "stimulus", stimulus: stimulus.name, t_s: video.currentTime });
  return new Promise((resolve) => {
    video.onended = () => { video.hidden = true; resolve(); };
    video.onerror = () => say("error", "This video does not play in this browser",
                              `${stimulus.name}: use WebM or H.264 MP4 for the study's videos.`);
    startWithSound(video).catch((error) => say("error", "The video did not start", String(error.message || error)));
  });
}

async function startWithSound(video) {
  // With sound; muted only where the browser refuses to play sound without a gesture (the video still plays).
  video.muted = false;
  try {
    await video.play();
  } catch (error) {
    if (error.name !== "NotAllowedError") throw error;
    video.muted = true;
    await video.play();
  }
  state.muted = video.muted;
}

start();
