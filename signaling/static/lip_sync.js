// Lip sync on the preview page, finer than the browser's own.
//
// libwebrtc's stream synchronization (video/stream_synchronization.cc: kMinDeltaMs = 30, "minimum difference
// between audio and video to warrant a change") leaves the two streams alone while they are less than 30 ms
// apart, and within that band the audio's jitter buffer (NetEq) drifts by itself: measured here, its delay slid
// from 56 to 31 ms over two minutes, the picture drifting from 18 ms early to 17 ms late. Once a second this
// compares where each receiver's playout is on the sender's clock (inbound-rtp estimatedPlayoutTimestamp, mapped
// through the sender reports) and holds back whichever stream is ahead through its receiver's jitterBufferTarget,
// releasing a hold on the other stream first.
//
// The video's estimate is where the picture is when WebRTC hands it to the page, not when it is shown, and how much
// later Chromium shows it depends on the path its compositor takes (third_party/blink/renderer/modules/mediastream/
// web_media_player_ms_compositor.cc: a frame set as it arrives, or picked at a BeginFrame by the smoothness
// algorithm, each stamping presentationTime and expectedDisplayTime its own way). Measured here: 25 ms (17-33 with
// the 60 Hz phase) from the start, and 2 ms for the rest of the session once the browser had stalled for 0.2 s,
// the picture then 23 ms early while both estimates stayed put. So the median lag of the frames shown,
// requestVideoFrameCallback's expectedDisplayTime - presentationTime, is taken off the video's estimate.
"use strict";

const LIP_SYNC = {
  periodMs: 1000,
  samples: 5, // the median of this many readings is acted on (a jitter buffer's jump for a second or two is not)
  deadbandMs: 2, // closer than this: leave it
  gain: 0.8, // the share of the gap closed per step
  // the sound's further way past its estimate, to the speaker: in sync when the sound's estimate is this much ahead
  // of the picture as shown. Measured here, headless Chromium playing into a PulseAudio sink against the frames'
  // display times: in sync with the estimates 6 ms apart and the display lag 25 ms, so 31 (PulseAudio's latency for
  // the page's streams read 23-28 ms), on top of the 60 Hz display steps (a flash is seen 0-16.7 ms after its frame
  // is due, that phase sliding slowly against the stream)
  aimMs: 31,
  // the display lag taken while the page reads none (no video element, or no requestVideoFrameCallback): headless
  // Chromium's as a session starts
  displayLagMs: 25,
  lagFrames: 50, // the median display lag of this many recent frames is used
  maxTargetMs: 1000,
};

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Starts trimming ``pc``'s audio/video offset as shown in ``videoElement`` (the <video> element playing it, or null:
// ``LIP_SYNC.displayLagMs`` is taken then); ``options`` override LIP_SYNC's fields. Returns the live state (also
// what the page shows). Stops by itself once the connection is closed.
function startLipSync(pc, videoElement = null, options = {}) {
  const settings = { ...LIP_SYNC, ...options };
  const sync = {
    offsetMs: null, displayLagMs: settings.displayLagMs, framesShown: 0, audioTargetMs: 0, videoTargetMs: 0,
    steps: 0, readings: [], supported: true,
  };
  const lags = [];
  if (videoElement && "requestVideoFrameCallback" in videoElement) {
    const onFrame = (now, meta) => {
      if (pc.connectionState === "closed") return;
      const lag = meta.expectedDisplayTime - meta.presentationTime;
      if (Number.isFinite(lag) && Math.abs(lag) < 1000) { // some frames read a little below 0 on the second path
        sync.framesShown += 1;
        lags.push(lag);
        if (lags.length > settings.lagFrames) lags.shift();
        sync.displayLagMs = median(lags);
      }
      videoElement.requestVideoFrameCallback(onFrame);
    };
    videoElement.requestVideoFrameCallback(onFrame);
  }
  let previous = {};
  const receiverOf = (kind) => pc.getReceivers().find((r) => r.track && r.track.kind === kind);

  const delayOf = (now, before) => {
    // the delay each sample or frame spent in the jitter buffer over the last period, and the buffer's target
    const count = now.jitterBufferEmittedCount - (before ? before.jitterBufferEmittedCount : 0);
    if (!before || count <= 0) return null;
    const actual = ((now.jitterBufferDelay - before.jitterBufferDelay) / count) * 1000;
    const target = ((now.jitterBufferTargetDelay - before.jitterBufferTargetDelay) / count) * 1000;
    return Math.max(actual, Number.isFinite(target) ? target : 0);
  };

  const setTarget = (kind, ms) => {
    const receiver = receiverOf(kind);
    if (!receiver || !("jitterBufferTarget" in receiver)) { sync.supported = false; return false; }
    receiver.jitterBufferTarget = ms > 0 ? Math.min(ms, settings.maxTargetMs) : null;
    return true;
  };

  const step = async () => {
    const streams = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && (s.kind === "audio" || s.kind === "video")) streams[s.kind] = s;
    });
    const { audio, video } = streams;
    if (!audio || !video) return;
    const delays = { audio: delayOf(audio, previous.audio), video: delayOf(video, previous.video) };
    previous = streams;
    if (!audio.estimatedPlayoutTimestamp || !video.estimatedPlayoutTimestamp) return;
    // positive: the sound being played was captured later than the picture being shown (the picture is late)
    const shown = video.estimatedPlayoutTimestamp - sync.displayLagMs;
    sync.readings.push(audio.estimatedPlayoutTimestamp - shown - settings.aimMs);
    if (sync.readings.length > settings.samples) sync.readings.shift();
    sync.offsetMs = median(sync.readings); // how late the picture is, as the page reckons it
    const error = sync.offsetMs;
    if (sync.readings.length < settings.samples || Math.abs(error) < settings.deadbandMs) return;
    const gap = settings.gain * Math.abs(error);
    const late = error > 0 ? "video" : "audio"; // the stream behind ...
    const early = late === "video" ? "audio" : "video"; // ... and the one to hold back, unless the late one is held
    const heldKey = late + "TargetMs";
    const holdKey = early + "TargetMs";
    if (sync[heldKey] > 0) {
      // a hold the stream's own delay has outgrown holds nothing: let it go at once
      const own = delays[late];
      const binding = own === null || sync[heldKey] >= own - settings.deadbandMs;
      sync[heldKey] = binding ? Math.max(0, sync[heldKey] - gap) : 0;
      if (!setTarget(late, sync[heldKey])) return;
    } else {
      const current = delays[early];
      if (current === null) return;
      sync[holdKey] = Math.max(sync[holdKey], current) + gap;
      if (!setTarget(early, sync[holdKey])) return;
    }
    sync.steps += 1;
    sync.readings = []; // judge the next step on readings taken after this one
  };

  const timer = setInterval(() => {
    if (pc.connectionState === "closed" || !sync.supported) { clearInterval(timer); return; }
    step().catch(() => {});
  }, settings.periodMs);
  return sync;
}
