// Lip sync on the preview page, finer than the browser's own.
//
// libwebrtc's stream synchronization (video/stream_synchronization.cc: kMinDeltaMs = 30, "minimum difference
// between audio and video to warrant a change") leaves the two streams alone while they are less than 30 ms
// apart, and within that band the audio's jitter buffer (NetEq) drifts by itself: measured here, its delay slid
// from 56 to 31 ms over two minutes, the picture drifting from 18 ms early to 17 ms late. Once a second this
// compares where each receiver's playout is on the sender's clock (inbound-rtp estimatedPlayoutTimestamp, mapped
// through the sender reports) and holds back whichever stream is ahead through its receiver's jitterBufferTarget,
// releasing a hold on the other stream first.
"use strict";

const LIP_SYNC = {
  periodMs: 1000,
  samples: 5, // the median of this many readings is acted on (a jitter buffer's jump for a second or two is not)
  deadbandMs: 2, // closer than this: leave it
  gain: 0.8, // the share of the gap closed per step
  // where the estimate is held: the picture this much late by it. After the estimates the sound still has further to
  // go than the picture: in what headless Chromium played into a PulseAudio sink against the frames' display times,
  // the picture came 5-8 ms (p50 of 3-minute runs) earlier than the estimate had it, on top of its 60 Hz display
  // steps (a flash is seen 0-16.7 ms after its frame is due)
  aimMs: 6,
  maxTargetMs: 1000,
};

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Starts trimming ``pc``'s audio/video offset (``options`` override LIP_SYNC's fields); returns the live state (also
// what the page shows). Stops by itself once the connection is closed.
function startLipSync(pc, options = {}) {
  const settings = { ...LIP_SYNC, ...options };
  const sync = {
    offsetMs: null, audioTargetMs: 0, videoTargetMs: 0, steps: 0, readings: [], supported: true,
  };
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
    sync.readings.push(audio.estimatedPlayoutTimestamp - video.estimatedPlayoutTimestamp);
    if (sync.readings.length > settings.samples) sync.readings.shift();
    sync.offsetMs = median(sync.readings);
    const error = sync.offsetMs - settings.aimMs;
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
