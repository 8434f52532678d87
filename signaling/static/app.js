// The preview page: joins a room as a viewer, plays the avatar, shows stats, and talks to it.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { ws: null, pc: null, dc: null, remoteId: null, room: "", token: "", turns: 0, retry: 500, lastStats: null, stopped: false };
window.avatarPage = state;  // for tests and debugging

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

async function join(room, token) {
  state.room = room; state.token = token;
  const query = `room=${encodeURIComponent(room)}&role=viewer&token=${encodeURIComponent(token)}`;
  // a plain GET first: a browser cannot read why a WebSocket upgrade failed, but it can read a 401
  try {
    const check = await fetch(`/ws?${query}`);
    if (check.status === 401) { setStatus("Could not join: the token is wrong.", true); showJoinForm(); return; }
    if (check.status === 400) { setStatus("Could not join: " + ((await check.json().catch(() => ({}))).error || "bad room"), true); showJoinForm(); return; }
    if (check.status === 429 || check.status === 503) { setStatus("Server busy; retrying…", true); return scheduleRejoin(); }
  } catch (err) {
    setStatus("Signaling server unreachable; retrying…", true);
    return scheduleRejoin();
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?${query}`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 500; setStatus("Joined room " + room + "; waiting for the avatar…"); };
  ws.onmessage = (event) => onSignal(JSON.parse(event.data));
  ws.onclose = () => { if (state.ws === ws) { setStatus("Signaling connection lost; reconnecting…", true); scheduleRejoin(); } };
}

function scheduleRejoin() {
  if (state.stopped) return;
  setTimeout(() => join(state.room, state.token), state.retry);
  state.retry = Math.min(state.retry * 2, 5000);
}

function onSignal(message) {
  switch (message.type) {
    case "welcome": {
      const remote = message.peers.find((p) => p.role === "remote");
      state.iceServers = message.ice_servers || [];
      if (remote) connect(remote.peer_id);
      break;
    }
    case "peer-joined": if (message.role === "remote") connect(message.peer_id); break;
    case "peer-left": if (message.peer_id === state.remoteId) { state.remoteId = null; closePeer(); setStatus("The avatar left; waiting for it to return…"); } break;
    case "answer": if (state.pc && message.from === state.remoteId) state.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }); break;
    case "candidate": if (state.pc && message.candidate) state.pc.addIceCandidate({ candidate: message.candidate, sdpMid: message.sdpMid, sdpMLineIndex: message.sdpMLineIndex }); break;
    case "bye":
      if (message.from && message.from === state.remoteId) {
        const remoteId = state.remoteId;
        closePeer();
        setTimeout(() => { if (state.remoteId === remoteId && !state.pc) connect(remoteId); }, 500);
      }
      break;
    case "error": setStatus("Server: " + message.message, true); break;
  }
}

function closePeer() {
  if (state.pc) state.pc.close();
  state.pc = null; state.dc = null;
}

async function connect(remoteId) {
  closePeer();
  state.remoteId = remoteId;
  const pc = new RTCPeerConnection({ iceServers: state.iceServers || [] });
  state.pc = pc;
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  // ?lipsync=off leaves the audio/video offset to the browser alone (for comparison)
  state.lipSync = params.get("lipsync") === "off" ? null : startLipSync(pc, $("video"));
  const dc = pc.createDataChannel("avatar", { ordered: true });
  state.dc = dc;
  dc.onmessage = (event) => onData(JSON.parse(event.data));
  const stream = new MediaStream();  // a fresh stream per connection: old, ended tracks must not linger
  $("video").srcObject = stream;
  pc.ontrack = (event) => {
    stream.addTrack(event.track);
    if (event.track.kind === "audio") watchLevel(event.track);
  };
  pc.onconnectionstatechange = () => {
    setStatus("Avatar connection: " + pc.connectionState, pc.connectionState === "failed");
    if (pc.connectionState === "failed" && state.pc === pc) {
      setTimeout(() => { if (state.pc === pc && state.remoteId === remoteId) connect(remoteId); }, 1000);
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  // send the offer with its candidates gathered (the avatar does not trickle)
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 3000);
  });
  send({ type: "offer", to: remoteId, sdp: pc.localDescription.sdp });
}

function watchLevel(track) {
  try {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    state.audioLevel = () => { analyser.getFloatTimeDomainData(data); return Math.sqrt(data.reduce((s, x) => s + x * x, 0) / data.length); };
  } catch (err) { state.audioLevel = () => 0; }
}

function onData(message) {
  if (message.type === "turn") {
    $("turn-state").textContent = message.state;
    if (message.text) $("turn-text").textContent = message.text;
  } else if (message.type === "metrics") {
    const list = $("metrics");
    list.replaceChildren();
    for (const [name, value] of Object.entries(message.values)) {
      const dt = document.createElement("dt"); dt.textContent = name.replace(/_ms$/, "").replaceAll("_", " ");
      const dd = document.createElement("dd"); dd.textContent = Math.round(value) + " ms";
      list.append(dt, dd);
    }
  } else if (message.type === "decision") {
    // why the clone answers a remark or lets it pass (meeting manners)
    $("decision").textContent = message.answered ? "answered (" + (message.why || "asked") + ")" : "not answered: " + message.reason;
  } else if (message.type === "control") {
    const badge = $("control");
    const person = message.mode === "person";
    badge.hidden = !person && !message.muted;
    badge.textContent = person ? "The person has taken over" : message.muted ? "The clone is muted" : "";
  } else if (message.type === "error") {
    setStatus("Avatar: " + message.message, true);
  }
}

async function updateStats() {
  const pc = state.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const rows = {};
  let bytes = 0, when = performance.now();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      rows["fps"] = (s.framesPerSecond || 0).toFixed(0);
      rows["resolution"] = s.frameWidth ? `${s.frameWidth}×${s.frameHeight}` : "-";
      rows["video packets lost"] = s.packetsLost;
      rows["video jitter"] = ((s.jitter || 0) * 1000).toFixed(1) + " ms";
      bytes += s.bytesReceived || 0;
    } else if (s.type === "inbound-rtp" && s.kind === "audio") {
      rows["audio packets lost"] = s.packetsLost;
      rows["audio jitter"] = ((s.jitter || 0) * 1000).toFixed(1) + " ms";
      bytes += s.bytesReceived || 0;
    } else if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
      rows["round-trip time"] = (s.currentRoundTripTime * 1000).toFixed(1) + " ms";
    }
  });
  if (state.lipSync && state.lipSync.offsetMs !== null) {
    const { offsetMs, audioTargetMs, videoTargetMs, displayLagMs } = state.lipSync;
    const held = audioTargetMs ? "audio " + audioTargetMs.toFixed(0) : videoTargetMs ? "video " + videoTargetMs.toFixed(0) : null;
    rows["picture late by"] = offsetMs.toFixed(0) + " ms" + (held ? ` (holding ${held} ms)` : "");
    rows["picture shown after"] = displayLagMs.toFixed(0) + " ms";
  }
  if (state.lastStats) rows["bitrate"] = ((bytes - state.lastStats.bytes) * 8 / (when - state.lastStats.when)).toFixed(0) + " kbit/s";
  state.lastStats = { bytes, when };
  const list = $("stats");
  list.replaceChildren();
  for (const [name, value] of Object.entries(rows)) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value;
    list.append(dt, dd);
  }
}

function showJoinForm() {
  $("join").hidden = false;
  $("room").value = state.room || params.get("room") || "demo";
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  $("join").hidden = true;
  join($("room").value, $("token").value);
});

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  if (!state.dc || state.dc.readyState !== "open") { setStatus("Not connected to the avatar yet.", true); return; }
  state.turns += 1;
  state.dc.send(JSON.stringify({ v: 1, type: "transcript", turn_id: `web-${Date.now()}-${state.turns}`, text, language: "en", sent_at: Date.now() / 1000 }));
  $("turn-state").textContent = "sent";
  $("text").value = "";
});

$("unmute").addEventListener("click", () => {
  const video = $("video");
  video.muted = !video.muted;
  $("unmute").textContent = video.muted ? "Unmute" : "Mute";
  video.play();
});

setInterval(updateStats, 1000);
if (params.get("room") && params.get("token")) join(params.get("room"), params.get("token"));
else showJoinForm();
