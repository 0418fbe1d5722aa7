// mien page: send an image (file, drop or webcam frame) to POST /v1/predict, draw each face's box
// and emotion on a canvas, and list every face's probabilities as a bar chart. No external code.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#e8710a", "#1a73e8", "#188038", "#d01884", "#9334e6", "#12b5cb", "#f9ab00"];
const webcam = { stream: null, running: false };

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

function setStatus(text) {
  $("status").textContent = text;
}

// Plain words for each way a request can fail; the service's own message says what exactly.
function explain(status, detail) {
  const lead = {
    400: "The image could not be read.",
    413: "That image is too large for this service.",
    415: "That file is not an image this service reads.",
    422: "The request was not understood.",
    503: "The service is busy right now; try again in a moment.",
    504: "The service took too long to answer; try a smaller image.",
  }[status] || `The service answered with an error (HTTP ${status}).`;
  return detail ? `${lead} ${detail}` : lead;
}

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name || "image");
  let response;
  try {
    response = await fetch("/v1/predict", { method: "POST", body: form });
  } catch (err) {
    throw new Error("Could not reach the mien service. Is `mien serve` still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : "";
    throw new Error(explain(response.status, detail));
  }
  return body;
}

function percent(p) {
  return `${Math.round(p * 100)}%`;
}

// Draw `source` (an ImageBitmap or the video) at the uploaded image's size, then one box and
// label per face; boxes are in the uploaded image's pixels, so they map 1:1 onto the canvas.
function draw(source, result) {
  const canvas = $("canvas");
  canvas.width = result.image.width;
  canvas.height = result.image.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  const fontSize = Math.max(14, line * 7);
  ctx.font = `600 ${fontSize}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  result.faces.forEach((face, i) => {
    const [x0, y0, x1, y1] = face.box;
    const color = COLORS[i % COLORS.length];
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const label = `${face.emotion} ${percent(face.confidence)}`;
    const width = ctx.measureText(label).width + 2 * line + 6;
    const top = y0 - fontSize - 4 >= 0 ? y0 : y1 + fontSize + 4;  // below the box when no room above
    ctx.fillStyle = color;
    ctx.fillRect(x0 - line / 2, top - fontSize - 4, width, fontSize + 4);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x0 + line + 2, top - 1);
  });
  $("stage").hidden = false;
}

function listFaces(result) {
  const list = $("faces");
  list.replaceChildren();
  result.faces.forEach((face, i) => {
    const card = document.createElement("article");
    card.className = "face";
    const title = document.createElement("h2");
    title.className = "face-label";
    title.style.color = COLORS[i % COLORS.length];
    title.textContent = `Face ${i + 1}: ${face.emotion} ${percent(face.confidence)}`;
    card.append(title);
    const ranked = Object.entries(face.probs).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of ranked) {
      const row = document.createElement("div");
      row.className = name === face.emotion ? "bar-row top" : "bar-row";
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-label", name);
      bar.setAttribute("aria-valuenow", String(Math.round(p * 100)));
      const fill = document.createElement("span");
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      bar.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = percent(p);
      row.append(label, bar, value);
      card.append(row);
    }
    list.append(card);
  });
}

function render(source, result) {
  draw(source, result);
  listFaces(result);
  const n = result.faces.length;
  const note = result.image.downscaled ? " (the image was scaled down for detection)" : "";
  setStatus(n === 0 ? "No face found in this image." : `${n} face${n === 1 ? "" : "s"} found in ${Math.round(result.time_ms)} ms${note}.`);
}

async function handleFile(file) {
  if (!file) return;
  stopWebcam();
  showError("");
  setStatus(`Sending ${file.name}…`);
  try {
    const result = await predict(file, file.name);
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (err) {
      throw new Error("The service read this image but the browser cannot display it (try JPEG or PNG).");
    }
    render(bitmap, result);
  } catch (err) {
    setStatus("");
    showError(err.message);
  }
}

async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("The webcam needs a secure page: open this page at http://127.0.0.1 or over https.");
    return;
  }
  showError("");
  try {
    webcam.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    const reason = err && err.name === "NotAllowedError" ? "Camera access was refused. Allow it in the browser to use the webcam."
      : err && err.name === "NotFoundError" ? "No camera was found on this computer."
      : `The camera could not be started (${err && err.message ? err.message : err}).`;
    showError(reason);
    return;
  }
  const video = $("video");
  video.srcObject = webcam.stream;
  await video.play();
  webcam.running = true;
  $("camera").textContent = "Stop webcam";
  $("camera").classList.add("on");
  setStatus("Webcam on: frames are sent one at a time.");
  webcamLoop();
}

// One frame in flight at a time: the next is taken when the answer to the last has arrived.
async function webcamLoop() {
  const video = $("video");
  const grab = document.createElement("canvas");
  while (webcam.running) {
    grab.width = video.videoWidth || 640;
    grab.height = video.videoHeight || 480;
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const result = await predict(blob, "webcam.jpg");
      if (webcam.running) render(grab, result);
    } catch (err) {
      showError(err.message);
      stopWebcam();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function stopWebcam() {
  if (!webcam.stream) return;
  webcam.running = false;
  webcam.stream.getTracks().forEach((track) => track.stop());
  webcam.stream = null;
  $("camera").textContent = "Start webcam";
  $("camera").classList.remove("on");
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => {
    handleFile(e.target.files[0]);
    e.target.value = "";  // choosing the same file again fires "change" again
  });
  $("camera").addEventListener("click", () => (webcam.stream ? stopWebcam() : startWebcam()));
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) handleFile(file);
    else showError("Drop an image file (not a link or text).");
  });
  // A file dropped next to the box should not make the browser leave the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

setup();
