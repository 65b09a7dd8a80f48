// segcolor routing studio: plain JavaScript, no dependencies, nothing fetched from outside.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { photos: [], current: null, region: null, stroke: null };

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = (response.headers.get("content-type") || "").includes("json")
    ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.detail) || response.statusText);
  return body;
}

// ---------------------------------------------------------------- upload queue
async function upload(files) {
  files = Array.from(files);
  if (!files.length) return;
  $("queue").hidden = false;
  $("queue-bar").max = files.length;
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    $("queue-bar").value = i;
    $("queue-text").textContent = `${i + 1} of ${files.length}: ${file.name}`;
    const entry = { name: file.name, id: null, failed: null };
    state.photos.push(entry);
    renderPhotos();
    try {
      const photo = await api(`/api/photos?name=${encodeURIComponent(file.name)}`, {
        method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
      });
      entry.id = photo.id;
      if (!state.current || i === 0) show(photo);
      showError("");
    } catch (err) {
      entry.failed = err.message;
      showError(err.message);
    }
    renderPhotos();
  }
  $("queue-bar").value = files.length;
  $("queue-text").textContent = `done: ${files.length} photo(s)`;
}

function renderPhotos() {
  const list = $("photos");
  list.replaceChildren();
  for (const entry of state.photos) {
    const li = document.createElement("li");
    li.textContent = entry.name + (entry.id || entry.failed ? "" : " …");
    if (entry.failed) { li.classList.add("failed"); li.title = entry.failed; }
    if (state.current && entry.id === state.current.id) li.classList.add("current");
    if (entry.id) li.onclick = async () => show(await api(`/api/photos/${entry.id}`));
    list.append(li);
  }
}

// ---------------------------------------------------------------- one photo
function imageUrl(photo, kind) {
  return `/api/photos/${photo.id}/${kind}.png?v=${photo.version}`;
}

function show(photo) {
  const changedPhoto = !state.current || state.current.id !== photo.id;
  state.current = photo;
  $("work").hidden = false;
  if (changedPhoto) {
    $("gray").src = imageUrl(photo, "gray");
    $("before-img").src = imageUrl(photo, "gray");
    state.region = null;
    $("region").hidden = true;
  }
  $("overlay").src = imageUrl(photo, "overlay");
  $("result").src = imageUrl(photo, "result");
  $("result").dataset.version = photo.version;
  $("summary").textContent = photo.summary;
  $("timing").textContent = photo.version > 1 ? `re-routed in ${photo.render_ms} ms` : "";
  $("dl-png").href = `/api/photos/${photo.id}/result.png?download=1`;
  $("dl-routing").href = `/api/photos/${photo.id}/routing.json`;
  $("dl-edits").href = `/api/photos/${photo.id}/edits.json`;
  $("vivid").value = photo.vividness;
  $("vivid-value").textContent = Number(photo.vividness).toFixed(2);
  $("style").value = photo.style;
  $("undo").disabled = !photo.can_undo;
  renderHints(photo);
  const legend = $("legend");
  legend.replaceChildren();
  for (const c of photo.categories) {
    if (c.share_percent <= 0) continue;
    const li = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.style.background = c.color;
    li.append(swatch, `${c.name} ${c.share_percent.toFixed(1)}%` +
      (c.expert !== c.name ? ` (colored by ${c.expert})` : ""));
    legend.append(li);
  }
  renderPhotos();
  if (state.region !== null) selectRegion(state.region);
}

async function clickOverlay(event) {
  const img = $("overlay");
  const box = img.getBoundingClientRect();
  const photo = state.current;
  const x = (event.clientX - box.left) / box.width * photo.width;
  const y = (event.clientY - box.top) / box.height * photo.height;
  const info = await api(`/api/photos/${photo.id}/regions/at?x=${x}&y=${y}`);
  if (info.id === null) { showError("no listed region there (a crumb of background)"); return; }
  showError("");
  state.region = info.id;
  renderRegion(info);
}

async function selectRegion(id) {
  renderRegion(await api(`/api/photos/${state.current.id}/regions/${id}`));
}

function renderRegion(info) {
  const photo = state.current;
  $("region").hidden = false;
  $("r-id").textContent = `#${info.id}`;
  const select = $("r-category");
  select.replaceChildren(...photo.categories.map((c) => new Option(c.name, c.name)));
  select.value = info.category_now;
  $("r-was").textContent = info.reassigned ? `(router said ${info.category})` : "";
  $("r-classes").textContent = info.classes.join(", ") || "–";
  $("r-confidence").textContent = info.confidence.toFixed(3);
  $("r-area").textContent = `${info.area_percent}% of the photo`;
  const profile = $("r-profile");
  if (info.profile) {
    profile.disabled = false;
    profile.replaceChildren(new Option("auto (classifier)", ""),
      ...info.profile.variants.map((v) => new Option(v, v)));
    profile.value = info.profile.pinned || "";
    const probs = Object.entries(info.profile.profile_probabilities)
      .sort((a, b) => b[1] - a[1]).map(([k, p]) => `${k} ${(p * 100).toFixed(0)}%`);
    $("r-pprob").textContent = `P: ${probs.join(", ")}`;
  } else {
    profile.disabled = true;
    profile.replaceChildren(new Option("– (one expert)", ""));
    $("r-pprob").textContent = "";
  }
  const colors = $("r-colors");
  colors.replaceChildren();
  for (const c of info.dominant_colors.colors) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = c.hex;
    s.title = `${c.hex} ${c.percent}%`;
    colors.append(s);
  }
  // swatches for a hint: the region's dominant chromas (a hint gives a, b; the photo keeps L)
  const swatches = $("hint-swatches");
  swatches.replaceChildren();
  for (const c of info.hint_colors || []) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = c.hex;
    s.title = `${c.hex}: a ${c.a}, b ${c.b} (${c.percent}% of region #${info.id})`;
    s.addEventListener("click", () => { $("hint-color").value = c.hex; setHintTool(true); });
    swatches.append(s);
  }
  state.regionInfo = info;
}

async function putEdits(edits) {
  try {
    const photo = await api(`/api/photos/${state.current.id}/edits`, {
      method: "PUT", body: JSON.stringify(edits), headers: { "Content-Type": "application/json" },
    });
    showError("");
    show(photo);
  } catch (err) { showError(err.message); }
}

function currentEdits() {
  return JSON.parse(JSON.stringify(state.current.edits));
}

function changeCategory() {
  const edits = currentEdits();
  const region = state.region;
  edits.reassign = edits.reassign.filter((r) => r.region !== region);
  const category = $("r-category").value;
  if (category !== state.regionInfo.category) edits.reassign.push({ region, category });
  putEdits(edits);
}

function changeVividness() {
  const edits = currentEdits();
  edits.vividness = Number($("vivid").value);
  putEdits(edits);
}

// ---------------------------------------------------------------- color hints
function contrast(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
}

function svgNode(name, attributes) {
  const node = document.createElementNS($("hint-marks").namespaceURI, name);  // SVG's
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  return node;
}

// one hint (or the stroke being drawn) as the SVG over the result, in photo pixels
function hintMark(hint, photo, pixel) {
  const group = svgNode("g", {});
  const edge = contrast(hint.color);
  if (hint.points) {
    const width = Math.max(hint.width || photo.hint_defaults.width, 3 * pixel);
    const points = hint.points.map(([x, y]) => `${x + 0.5},${y + 0.5}`).join(" ");
    const line = { points, fill: "none", "stroke-linecap": "round", "stroke-linejoin": "round" };
    group.append(svgNode("polyline", { ...line, stroke: edge, "stroke-width": width + 3 * pixel }),
      svgNode("polyline", { ...line, stroke: hint.color, "stroke-width": width }));
  } else {
    const r = Math.max(hint.radius || photo.hint_defaults.radius, 4 * pixel);
    group.append(svgNode("circle", { cx: hint.x + 0.5, cy: hint.y + 0.5, r, fill: hint.color,
      stroke: edge, "stroke-width": 1.5 * pixel }));
  }
  return group;
}

function drawHints() {
  const photo = state.current;
  if (!photo) return;
  const svg = $("hint-marks");
  svg.setAttribute("viewBox", `0 0 ${photo.width} ${photo.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const pixel = photo.width / Math.max($("result").clientWidth, 1);  // one screen px
  const marks = photo.hints.map((h) => hintMark(h, photo, pixel));
  if (state.stroke && state.stroke.points.length > 1) {
    marks.push(hintMark({ points: state.stroke.points, color: state.stroke.color,
      width: state.stroke.width }, photo, pixel));
  }
  svg.replaceChildren(...marks);
}

function renderHints(photo) {
  const list = $("hint-list");
  list.replaceChildren();
  for (const hint of photo.hints) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = hint.color;
    const where = hint.kind === "point"
      ? `point at (${Math.round(hint.x)}, ${Math.round(hint.y)})`
      : `stroke of ${hint.points.length} points`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.title = `remove hint ${hint.index}`;
    remove.addEventListener("click", () => removeHint(hint.index));
    li.append(`${hint.index}.`, swatch, `${hint.color} ${where}`, remove);
    list.append(li);
  }
  const notes = [];
  if (!photo.reads_hints) notes.push("These experts do not read hints: hints are saved but "
    + "change no colors.");
  if (!photo.has_vivid) notes.push("These experts have no vivid head: both styles look alike.");
  $("hint-note").textContent = notes.join(" ");
  $("hint-note").hidden = !notes.length;
  drawHints();
}

function setHintTool(on) {
  $("hint-tool").checked = on;
  $("compare").classList.toggle("hinting", on);
  $("result-help").textContent = on ? "(hint tool: click a point, drag a stroke)"
    : "(drag: before / after)";
}

function photoPoint(event) {
  const photo = state.current;
  const box = $("result").getBoundingClientRect();
  const clamp = (v, top) => Math.min(Math.max(v, 0), top - 0.01);
  const x = clamp((event.clientX - box.left) / box.width * photo.width, photo.width);
  const y = clamp((event.clientY - box.top) / box.height * photo.height, photo.height);
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

function hintSize() {
  const size = Number($("hint-size").value);
  return $("hint-size").value !== "" && size > 0 ? size : null;
}

function startHint(event) {
  if (!$("hint-tool").checked || !state.current || event.button !== 0) return;
  event.preventDefault();
  $("compare").setPointerCapture(event.pointerId);
  state.stroke = { points: [photoPoint(event)], screen: [event.clientX, event.clientY],
    moved: 0, color: $("hint-color").value, width: hintSize() };
}

function moveHint(event) {
  const stroke = state.stroke;
  if (!stroke) return;
  const last = stroke.screen;
  const step = Math.hypot(event.clientX - last[0], event.clientY - last[1]);
  if (step < 3) return;
  stroke.screen = [event.clientX, event.clientY];
  stroke.moved += step;
  stroke.points.push(photoPoint(event));
  drawHints();
}

async function endHint(event) {
  const stroke = state.stroke;
  if (!stroke) return;
  state.stroke = null;
  if (event.type === "pointerup") moveHint(event);
  let hint;
  const size = stroke.width;
  if (stroke.moved < 4 || stroke.points.length < 2) {  // a click: a point
    const [x, y] = stroke.points[0];
    hint = { x, y, color: stroke.color, ...(size ? { radius: size / 2 } : {}) };
  } else {
    let points = stroke.points;
    if (points.length > 2000) {  // the edits' limit: keep every k-th point and the last
      const k = Math.ceil(points.length / 1999);
      points = points.filter((_, i) => i % k === 0).concat([points[points.length - 1]]);
    }
    hint = { points, color: stroke.color, ...(size ? { width: size } : {}) };
  }
  await send(`/api/photos/${state.current.id}/hints`, "POST", hint);
}

async function send(path, method, body) {
  try {
    const options = { method };
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers = { "Content-Type": "application/json" };
    }
    const photo = await api(path, options);
    showError("");
    show(photo);
  } catch (err) { showError(err.message); drawHints(); }
}

function removeHint(index) {
  send(`/api/photos/${state.current.id}/hints/${index}`, "DELETE");
}

function changeStyle() {
  send(`/api/photos/${state.current.id}/style?style=${encodeURIComponent($("style").value)}`,
    "PUT");
}

function undo() {
  if (state.current && !$("undo").disabled) send(`/api/photos/${state.current.id}/undo`, "POST");
}

function changeProfile() {
  const edits = currentEdits();
  const expert = state.regionInfo.expert_now;
  delete edits.profiles[expert];
  if ($("r-profile").value) edits.profiles[expert] = $("r-profile").value;
  putEdits(edits);
}

// ---------------------------------------------------------------- wiring
function wire() {
  const drop = $("drop");
  $("files").addEventListener("change", (e) => upload(e.target.files));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload(e.dataTransfer.files);
  });
  $("overlay").addEventListener("click", clickOverlay);
  $("r-category").addEventListener("change", changeCategory);
  $("r-profile").addEventListener("change", changeProfile);
  $("vivid").addEventListener("input", (e) => {
    $("vivid-value").textContent = Number(e.target.value).toFixed(2);
  });
  $("vivid").addEventListener("change", changeVividness);
  $("reset").addEventListener("click", () => putEdits({ version: 1 }));
  $("style").addEventListener("change", changeStyle);
  $("undo").addEventListener("click", undo);
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName);
    if ((e.ctrlKey || e.metaKey) && e.key === "z" && !typing) { e.preventDefault(); undo(); }
  });
  $("hint-tool").addEventListener("change", (e) => setHintTool(e.target.checked));
  const compare = $("compare");
  compare.addEventListener("pointerdown", startHint);
  compare.addEventListener("pointermove", moveHint);
  compare.addEventListener("pointerup", endHint);
  compare.addEventListener("pointercancel", () => { state.stroke = null; drawHints(); });
  $("slider").addEventListener("input", (e) => {
    $("before").style.width = `${e.target.value}%`;
  });
  const fit = () => {
    $("before-img").style.width = `${$("result").clientWidth}px`;
    drawHints();
  };
  $("result").addEventListener("load", fit);
  window.addEventListener("resize", fit);
}
wire();
